//! [`Io`]: where a command writes its output, its messages and progress,
//! and where it reads the answer to a confirmation.

use std::io::{BufRead, Write};

use crate::error::CliError;

/// Where a command writes and reads.
///
/// Results go to `out` (the command's output: a table, a JSON document, an
/// id); messages, progress and prompts go to `err`. A command asks for
/// confirmation only when an input is set ([`Io::interactive`]); without
/// one, a command that needs confirmation fails unless `--yes` is given.
pub struct Io<'a> {
    pub(crate) out: &'a mut (dyn Write + Send),
    pub(crate) err: &'a mut (dyn Write + Send),
    input: Option<&'a mut (dyn BufRead + Send)>,
    err_is_terminal: bool,
}

impl<'a> Io<'a> {
    /// Writes to `out` and `err`; asks nothing (non-interactive).
    pub fn new(out: &'a mut (dyn Write + Send), err: &'a mut (dyn Write + Send)) -> Self {
        Io { out, err, input: None, err_is_terminal: false }
    }

    /// Reads confirmations from `input` (a terminal: the operator answers).
    pub fn interactive(mut self, input: &'a mut (dyn BufRead + Send)) -> Self {
        self.input = Some(input);
        self
    }

    /// Whether `err` is a terminal: progress is then redrawn on one line
    /// instead of printed as a line per step.
    pub fn err_is_terminal(mut self, yes: bool) -> Self {
        self.err_is_terminal = yes;
        self
    }

    /// Asks `question [y/N]` unless `yes`; `action` says what is refused.
    pub(crate) fn confirm(&mut self, yes: bool, question: &str, action: &str) -> Result<(), CliError> {
        if yes {
            return Ok(());
        }
        let Some(input) = self.input.as_mut() else {
            return Err(CliError::ConfirmationRequired { action: action.to_owned() });
        };
        write!(self.err, "{question} [y/N] ")?;
        self.err.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if answer.is_empty() {
            // End of input: no answer is a no, on a line of its own.
            writeln!(self.err)?;
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(()),
            _ => Err(CliError::Declined { action: action.to_owned() }),
        }
    }

    /// A progress reporter for `total` steps, on `err`.
    pub(crate) fn progress(&self, verb: &'static str, total: usize) -> Progress {
        Progress { verb, total, done: 0, shown: 0, redraw: self.err_is_terminal }
    }
}

/// Progress of a long operation, on stderr: redrawn in place on a terminal,
/// else a line at every tenth of the way.
pub(crate) struct Progress {
    verb: &'static str,
    total: usize,
    done: usize,
    shown: usize,
    redraw: bool,
}

impl Progress {
    /// One more step done.
    pub(crate) fn step(&mut self, err: &mut dyn Write) -> std::io::Result<()> {
        self.done += 1;
        let (done, total, verb) = (self.done, self.total, self.verb);
        if self.redraw {
            write!(err, "\r{verb} {done}/{total}")?;
            if done == total {
                writeln!(err)?;
            }
            return err.flush();
        }
        let tenth = total.div_ceil(10).max(1);
        if done == total || done >= self.shown + tenth {
            self.shown = done;
            writeln!(err, "{verb} {done}/{total}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn confirmation_reads_yes_and_refuses_anything_else() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut input: &[u8] = b"yes\n";
        let mut io = Io::new(&mut out, &mut err).interactive(&mut input);
        io.confirm(false, "Purge?", "purge").unwrap();
        let mut input: &[u8] = b"\n";
        let mut io = Io::new(&mut out, &mut err).interactive(&mut input);
        assert!(matches!(io.confirm(false, "Purge?", "purge"), Err(CliError::Declined { .. })));
        let mut io = Io::new(&mut out, &mut err);
        assert!(matches!(io.confirm(false, "Purge?", "purge"), Err(CliError::ConfirmationRequired { .. })));
        io.confirm(true, "Purge?", "purge").unwrap();
    }

    #[test]
    fn progress_prints_a_line_per_tenth_without_a_terminal() {
        let mut err = Vec::new();
        let mut p = Progress { verb: "retried", total: 25, done: 0, shown: 0, redraw: false };
        for _ in 0..25 {
            p.step(&mut err).unwrap();
        }
        let text = String::from_utf8(err).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"retried 3/25"));
        assert_eq!(lines.last(), Some(&"retried 25/25"));
        assert!(lines.len() <= 10, "{lines:?}");
    }
}
