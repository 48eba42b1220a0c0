//! How many locals each function of a Lua chunk has in scope at once, at
//! most: Lua 5.1 refuses to load a chunk where a function's count passes
//! 200 (`LUAI_MAXVARS`). Counted as Lua's parser counts them: a function's
//! parameters, every name of a `local` statement from there to the end of
//! its block, a `local function`'s name, and a `for` loop's three hidden
//! control variables besides its own names. Blocks nested in a function
//! (`do`, `then`, `else`, loop bodies, `repeat`) add theirs on top of the
//! enclosing ones while they last; a nested function starts from its own
//! parameters.

/// The most locals any function of `src` has in scope at once, and the
/// line where that count is first reached.
pub(crate) fn max_active_locals(src: &str) -> (usize, usize) {
    // Each open scope: whether it starts a function, and its locals.
    let mut scopes: Vec<(bool, usize)> = vec![(true, 0)];
    let mut best = (0, 0);
    let mut tokens = Tokens { src: src.as_bytes(), at: 0, line: 1 };
    // A `for` opens its scope at the keyword; its `do` opens none.
    let mut loop_do = false;
    let mut add = |scopes: &mut Vec<(bool, usize)>, n: usize, line: usize| {
        if let Some(top) = scopes.last_mut() {
            top.1 += n;
        }
        let start = scopes.iter().rposition(|s| s.0).unwrap_or(0);
        let active: usize = scopes[start..].iter().map(|s| s.1).sum();
        if active > best.0 {
            best = (active, line);
        }
    };
    while let Some(word) = tokens.next_word() {
        let line = tokens.line;
        match word {
            "function" => {
                scopes.push((true, 0));
                let params = tokens.parameters();
                add(&mut scopes, params, line);
            }
            "local" => {
                if tokens.peek_word() == Some("function") {
                    add(&mut scopes, 1, line);
                } else {
                    let n = tokens.name_list();
                    add(&mut scopes, n, line);
                }
            }
            "for" => {
                scopes.push((false, 0));
                let n = tokens.name_list();
                add(&mut scopes, 3 + n, line);
                loop_do = true;
            }
            "do" if loop_do => loop_do = false,
            "do" | "then" | "repeat" => scopes.push((false, 0)),
            "else" => {
                scopes.pop();
                scopes.push((false, 0));
            }
            "elseif" | "end" | "until" => {
                scopes.pop();
            }
            _ => {}
        }
    }
    best
}

/// The words of a Lua chunk, its comments and strings passed over.
struct Tokens<'a> {
    src: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> Tokens<'a> {
    /// The next identifier or keyword.
    fn next_word(&mut self) -> Option<&'a str> {
        loop {
            let c = *self.src.get(self.at)?;
            match c {
                b'\n' => {
                    self.line += 1;
                    self.at += 1;
                }
                b'-' if self.src.get(self.at + 1) == Some(&b'-') => {
                    self.at += 2;
                    if !self.long_bracket() {
                        while self.src.get(self.at).is_some_and(|&c| c != b'\n') {
                            self.at += 1;
                        }
                    }
                }
                b'[' if matches!(self.src.get(self.at + 1), Some(b'[' | b'=')) => {
                    if !self.long_bracket() {
                        self.at += 1;
                    }
                }
                b'\'' | b'"' => {
                    self.at += 1;
                    while let Some(&s) = self.src.get(self.at) {
                        self.at += 1;
                        match s {
                            b'\\' => self.at += 1,
                            b'\n' => self.line += 1,
                            _ if s == c => break,
                            _ => {}
                        }
                    }
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.at;
                    while self.src.get(self.at).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_') {
                        self.at += 1;
                    }
                    // A word is ASCII letters, digits and underscores.
                    let src: &'a [u8] = self.src;
                    return std::str::from_utf8(&src[start..self.at]).ok();
                }
                c if c.is_ascii_digit() => {
                    // A number, with its hex digits and exponent: no word.
                    while self.src.get(self.at).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'.') {
                        self.at += 1;
                    }
                }
                _ => self.at += 1,
            }
        }
    }

    /// Passes over a long bracket (`[[..]]`, `[==[..]==]`) starting here,
    /// if one does.
    fn long_bracket(&mut self) -> bool {
        let rest = &self.src[self.at..];
        let level = rest.iter().skip(1).take_while(|&&c| c == b'=').count();
        if rest.first() != Some(&b'[') || rest.get(level + 1) != Some(&b'[') {
            return false;
        }
        let close: Vec<u8> = [b"]".as_slice(), &vec![b'='; level], b"]"].concat();
        let body = &rest[level + 2..];
        let len = body.windows(close.len()).position(|w| w == close).map_or(body.len(), |p| p + close.len());
        self.line += body[..len].iter().filter(|&&c| c == b'\n').count();
        self.at += level + 2 + len;
        true
    }

    /// The word after this one, without taking it.
    fn peek_word(&mut self) -> Option<&'a str> {
        let (at, line) = (self.at, self.line);
        let word = self.next_word();
        self.at = at;
        self.line = line;
        word
    }

    /// How many names a comma-separated list from here holds (a `local`
    /// statement's, a `for` loop's).
    fn name_list(&mut self) -> usize {
        let mut n = 0;
        loop {
            if self.next_word().is_none() {
                return n;
            }
            n += 1;
            while self.src.get(self.at).is_some_and(|c| *c == b' ' || *c == b'\t') {
                self.at += 1;
            }
            if self.src.get(self.at) != Some(&b',') {
                return n;
            }
            self.at += 1;
        }
    }

    /// How many parameters the function whose name (if any) starts here
    /// declares, up to its `)`.
    fn parameters(&mut self) -> usize {
        let find =
            |from: usize, c: u8| self.src[from..].iter().position(|&b| b == c).map_or(self.src.len(), |p| from + p);
        let open = find(self.at, b'(');
        let close = find(open, b')');
        let list = &self.src[open.min(close)..close];
        self.at = close;
        list.split(|&c| c == b',').filter(|p| p.iter().any(|c| c.is_ascii_alphabetic() || *c == b'_')).count()
    }
}

#[cfg(test)]
mod tests {
    use super::max_active_locals;

    #[test]
    fn counts_what_is_in_scope_at_once() {
        // Each chunk, the most locals in scope at once, and the line where
        // that count is first reached.
        let cases = [
            // Two locals at the top, three more inside the `if`.
            ("local a, b = 1, 2\nif a then\n  local c, d, e = 3\nend\nlocal f\n", 5, 3),
            // A `for` holds three hidden variables and its own names.
            ("local a\nfor k, v in pairs(t) do\n  local x\nend\n", 7, 3),
            ("for i = 1, 3 do\n  local x\nend\nlocal y\n", 5, 2),
            // `else` ends the `then` block's locals; `elseif` too.
            ("if x then local a, b else local c end\nif y then local d elseif z then local e end", 2, 1),
            // A nested function counts from its parameters.
            ("local a, b, c\nlocal function f(x, y)\n  local z\nend\n", 4, 2),
            ("local a\nlocal g = function(p, q, r, s)\n  local z\nend\n", 5, 3),
            // Comments and strings hold no code.
            ("local a -- local b, c\nlocal s = 'local d' .. \"local e\" .. [[local f\n]] --[==[ local g\n]==]\n", 2, 2),
            // A `repeat` block and a `while` loop's `do` block.
            ("repeat local a, b until a\nwhile x do local c do local d end end", 2, 1),
        ];
        for (src, most, line) in cases {
            assert_eq!(max_active_locals(src), (most, line), "{src}");
        }
    }
}
