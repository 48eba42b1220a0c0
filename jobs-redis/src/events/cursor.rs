//! Event cursors on Redis: a stream entry and how many of its events a
//! reader saw.
//!
//! One entry holds the events of one script call (see "Job events" in
//! `common.lua`). A cursor's text is the entry's id (`<ms>-<seq>`) when the
//! reader saw all of the entry's events, and `<ms>-<seq>.<n>` when it saw
//! the first `n` of them: a reader resumes after exactly that event. `0` is
//! before every entry held. Entries of one event, and the ids `listen`
//! hands out, are plain ids, so cursors written before entries held many
//! events read the same.

use jobs_core::{Error, EventCursor};

/// A reader's position in a queue's `events` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// The entry id (`0-0` before every entry).
    pub(crate) entry: String,
    /// How many of the entry's events were seen; 0 when all of them were.
    pub(crate) seen: usize,
}

impl Position {
    /// Reads a cursor's text; a text no backend handed out is an
    /// [`Error::InvalidArgument`].
    pub(crate) fn parse(cursor: &EventCursor) -> Result<Position, Error> {
        let text = cursor.as_str();
        if text == "0" {
            return Ok(Position { entry: "0-0".to_owned(), seen: 0 });
        }
        let bad = || {
            Error::InvalidArgument(format!("invalid event cursor `{text}`: use one an event or `listen` handed out"))
        };
        let (entry, seen) = match text.split_once('.') {
            Some((entry, n)) => (entry, n.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(bad)?),
            None => (text, 0),
        };
        let (ms, seq) = entry.split_once('-').ok_or_else(bad)?;
        if ms.parse::<u64>().is_err() || seq.parse::<u64>().is_err() {
            return Err(bad());
        }
        Ok(Position { entry: entry.to_owned(), seen })
    }

    /// The cursor of event `index` (from 0) of entry `id`, which holds
    /// `count` events.
    pub(crate) fn cursor_of(id: &str, index: usize, count: usize) -> EventCursor {
        if index + 1 >= count {
            return EventCursor::from_pieces(&[id]);
        }
        let mut seen = itoa::Buffer::new();
        EventCursor::from_pieces(&[id, ".", seen.format(index + 1)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Position, Error> {
        Position::parse(&EventCursor::from_backend(text))
    }

    #[test]
    fn cursors_name_an_entry_and_the_events_seen_in_it() {
        assert_eq!(parse("0").unwrap(), Position { entry: "0-0".into(), seen: 0 });
        assert_eq!(parse("1733320000000-0").unwrap(), Position { entry: "1733320000000-0".into(), seen: 0 });
        assert_eq!(parse("1733320000000-4.17").unwrap(), Position { entry: "1733320000000-4".into(), seen: 17 });
        for bad in ["", "x", "12", "12-", "-3", "12-3.", "12-3.x", "12-3.4.5", "12-3.0"] {
            assert!(matches!(parse(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }

    #[test]
    fn the_last_event_of_an_entry_is_the_entry_itself() {
        assert_eq!(Position::cursor_of("5-1", 0, 3).as_str(), "5-1.1");
        assert_eq!(Position::cursor_of("5-1", 1, 3).as_str(), "5-1.2");
        assert_eq!(Position::cursor_of("5-1", 2, 3).as_str(), "5-1");
        assert_eq!(Position::cursor_of("5-1", 0, 1).as_str(), "5-1");
        // Every cursor handed out reads back as the position it names.
        assert_eq!(
            parse(Position::cursor_of("5-1", 1, 3).as_str()).unwrap(),
            Position { entry: "5-1".into(), seen: 2 }
        );
    }
}
