//! Server-Sent Events framing (WHATWG HTML §9.2.6), the subset the revocation feed uses:
//! `event:`, `id:` and `data:` fields, comments, and a blank line ending an event. Bytes in,
//! events out; it knows nothing of sockets or of what the events mean.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` when the event named none.
    pub event: String,
    /// The data lines joined with `\n`.
    pub data: String,
    /// The `id` field of this event, if it had one.
    pub id: Option<String>,
}

/// Incremental parser. A line longer than the limit is an error: the connection is dropped and
/// the consumer reconnects, rather than buffering a hostile or broken stream without end.
#[derive(Debug)]
pub struct Parser {
    buffer: Vec<u8>,
    max_line: usize,
    event: String,
    data: Option<String>,
    id: Option<String>,
    /// A `\r` ended the last chunk: a `\n` opening the next one belongs to it.
    after_cr: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("an event stream line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("an event stream line is not UTF-8")]
    NotUtf8,
}

impl Parser {
    pub fn new(max_line: usize) -> Self {
        Parser { buffer: Vec::new(), max_line, event: String::new(), data: None, id: None, after_cr: false }
    }

    /// Feeds `chunk`; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.buffer.extend_from_slice(&rest[..end]);
            self.check_len()?;
            let line = std::mem::take(&mut self.buffer);
            let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            if rest[end] == b'\r' && end + 1 == rest.len() {
                self.after_cr = true;
            }
            rest = &rest[end + if crlf { 2 } else { 1 }..];
        }
        self.buffer.extend_from_slice(rest);
        self.check_len()?;
        Ok(events)
    }

    fn check_len(&self) -> Result<(), SseError> {
        if self.buffer.len() > self.max_line { Err(SseError::LineTooLong(self.max_line)) } else { Ok(()) }
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take();
            let event = std::mem::take(&mut self.event);
            let id = self.id.take();
            // An event without data is not dispatched (§9.2.6 "dispatch the event").
            return data.map(|data| Event { event: if event.is_empty() { "message".into() } else { event }, data, id });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_owned(),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str, id: Option<&str>) -> Event {
        Event { event: name.into(), data: data.into(), id: id.map(Into::into) }
    }

    #[test]
    fn events_are_split_on_blank_lines() {
        let mut p = Parser::new(1024);
        let events = p
            .push(b"event: reset\nid: 7\ndata: {\"revocations\":[]}\n\n: comment\nevent: ready\ndata: {}\n\n")
            .unwrap();
        assert_eq!(events, [event("reset", "{\"revocations\":[]}", Some("7")), event("ready", "{}", None)]);
    }

    #[test]
    fn any_chunking_and_line_ending_gives_the_same_events() {
        let stream = "event: revoke\r\nid: a-1\r\ndata: {\"kind\":\"sid\"}\r\n\r\ndata:x\rdata:y\r\rdata: z\n\n";
        let expected = [
            event("revoke", "{\"kind\":\"sid\"}", Some("a-1")),
            event("message", "x\ny", None),
            event("message", "z", None),
        ];
        for size in 1..stream.len() {
            let mut p = Parser::new(1024);
            let mut got = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                got.extend(p.push(chunk).unwrap());
            }
            assert_eq!(got, expected, "chunks of {size}");
        }
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let mut p = Parser::new(1024);
        assert!(p.push(b"event: heartbeat\n\n").unwrap().is_empty());
        assert_eq!(p.push(b"data: 1\n\n").unwrap(), [event("message", "1", None)]);
    }

    #[test]
    fn overlong_lines_and_bad_utf8_are_errors() {
        let mut p = Parser::new(8);
        assert_eq!(p.push(b"data: 0123456789").unwrap_err(), SseError::LineTooLong(8));
        let mut p = Parser::new(64);
        assert_eq!(p.push(b"data: \xff\n").unwrap_err(), SseError::NotUtf8);
    }
}
