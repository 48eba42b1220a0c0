//! Plain-text tables that fit a terminal: columns padded to their widest
//! cell, and the widest shrinkable column cut (with `…`) until the whole
//! line fits.

/// The width every table fits in.
pub(crate) const WIDTH: usize = 80;

/// Space between two columns.
const GAP: usize = 2;

/// How a column is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    /// Left aligned, never cut unless nothing else is left to cut (ids).
    Keep,
    /// Left aligned, cut first when the table is too wide (names, errors).
    Shrink,
    /// Right aligned (numbers), never cut unless nothing else is left.
    Num,
}

/// A table: headers, then rows of cells.
pub(crate) struct Table {
    headers: Vec<&'static str>,
    kinds: Vec<Col>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub(crate) fn new(columns: &[(&'static str, Col)]) -> Self {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            kinds: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column; control characters become spaces).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    /// The table as lines of at most `max` characters.
    pub(crate) fn render(&self, max: usize) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = (0..n)
            .map(|i| self.rows.iter().map(|r| len(&r[i])).chain([len(self.headers[i])]).max().unwrap_or(0))
            .collect();
        let budget = max.saturating_sub(GAP * n.saturating_sub(1));
        // Cut the widest shrinkable column, one character at a time, down to
        // its header; then, if still too wide, the widest of any kind.
        for pass in [true, false] {
            while widths.iter().sum::<usize>() > budget {
                let floor = |i: usize| if pass { len(self.headers[i]).max(4) } else { 1 };
                let widest = (0..n)
                    .filter(|&i| !pass || self.kinds[i] == Col::Shrink)
                    .filter(|&i| widths[i] > floor(i))
                    .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)));
                match widest {
                    Some(i) => widths[i] -= 1,
                    None => break,
                }
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for cells in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
                let text = cut(cell, widths[i]);
                let pad = " ".repeat(widths[i] - len(&text));
                if self.kinds[i] == Col::Num {
                    line.push_str(&pad);
                    line.push_str(&text);
                } else {
                    line.push_str(&text);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Characters, as the terminal counts them for the text this tool prints.
pub(crate) fn len(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `w` characters, ending in `…` when cut.
pub(crate) fn cut(s: &str, w: usize) -> String {
    if len(s) <= w {
        return s.to_owned();
    }
    if w == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(w - 1).collect();
    t.push('…');
    t
}

/// Control characters (line breaks in an error message) as spaces, so that
/// a row stays one line.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A count in at most 5 characters below a trillion: `12345`, `123k`,
/// `1.2M`, `45M`, `3.1G` (rounded down, so a count is never overstated).
pub(crate) fn count(n: u64) -> String {
    if n < 100_000 {
        return n.to_string();
    }
    let (value, unit) = if n < 1_000_000 {
        (n as f64 / 1e3, "k")
    } else if n < 1_000_000_000 {
        (n as f64 / 1e6, "M")
    } else {
        (n as f64 / 1e9, "G")
    };
    if value < 10.0 {
        format!("{:.1}{unit}", (value * 10.0).floor() / 10.0)
    } else {
        format!("{}{unit}", value.floor() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_tables_cut_the_shrinkable_column_first() {
        let mut t = Table::new(&[("ID", Col::Keep), ("ERROR", Col::Shrink), ("N", Col::Num)]);
        t.row(vec!["email:01JDQ6V5Z3C8T4M9N2K7R1W0XY".into(), "x".repeat(200), "7".into()]);
        t.row(vec!["a".into(), "line\nbreak".into(), "12345".into()]);
        let text = t.render(WIDTH);
        for line in text.lines() {
            assert!(len(line) <= WIDTH, "{line}");
        }
        assert!(text.contains("email:01JDQ6V5Z3C8T4M9N2K7R1W0XY"), "ids are kept whole:\n{text}");
        assert!(text.contains("x…"), "{text}");
        assert!(text.contains("line break"), "{text}");
        assert_eq!(text.lines().nth(2).map(|l| l.ends_with("12345")), Some(true));
    }

    #[test]
    fn anything_is_cut_when_nothing_shrinkable_is_left() {
        let mut t = Table::new(&[("ID", Col::Keep), ("OTHER", Col::Keep)]);
        t.row(vec!["i".repeat(70), "o".repeat(70)]);
        assert!(t.render(WIDTH).lines().all(|l| len(l) <= WIDTH));
    }

    #[test]
    fn counts_fit_five_characters() {
        for (n, s) in [(0, "0"), (99_999, "99999"), (100_000, "100k"), (999_999, "999k"), (1_234_567, "1.2M")] {
            assert_eq!(count(n), s);
        }
        assert_eq!(count(45_000_000), "45M");
        assert_eq!(count(u64::MAX), "18446744073G");
        assert_eq!(count(9_999_999), "9.9M");
        for n in [0, 9, 99_999, 100_000, 9_949_999, 9_999_999, 999_999_999, 999_999_999_999] {
            assert!(count(n).len() <= 5, "{n} -> {}", count(n));
        }
    }
}
