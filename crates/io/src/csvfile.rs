//! Helpers shared by the CSV readers (runs and plans).

/// Byte offset and 1-based line where the record at `pos` starts in `bytes`. The csv crate
/// leaves the `\n` of a CRLF terminator to the next record, so its position can point at that
/// byte and its line count lag one behind; both are taken from the bytes instead.
pub(crate) fn record_start(bytes: &[u8], pos: &csv::Position) -> (usize, usize) {
    let mut start = usize::try_from(pos.byte())
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
        start += 1;
    }
    let line = bytes[..start].split(|&b| b == b'\n').count();
    (start, line)
}
