//! Huffman tables (T.81 C, F.2.2.3) and the entropy-coded bit reader.
#![forbid(unsafe_code)]

/// Why a decode stopped: the stream is cut short, breaks the format, uses a part of
/// JPEG this decoder leaves to the full decoder, or is over a work limit (`budget.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    Corrupt,
    Unsupported,
    OutOfMemory,
    /// More than `budget::MAX_SCANS` scans.
    TooManyScans,
    /// Scans that would visit more blocks than `budget::VISITS_PER_BLOCK` times the frame's.
    OverBudget,
}

pub type Result<T> = core::result::Result<T, Error>;

const LOOKUP_BITS: u32 = 11;

/// Bits of lookahead for `Huffman::skip`.
pub const SKIP_BITS: u32 = 12;

/// A decoding table: codes up to 11 bits by direct lookup, longer ones canonically.
pub struct Huffman {
    /// `(length << 8) | symbol` for every 11-bit prefix that starts with a code of at most
    /// 11 bits; 0 where the code is longer.
    lookup: [u16; 1 << LOOKUP_BITS],
    /// Largest code of each length (-1 when none), and the index of its first symbol.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: [u8; 256],
    /// For AC tables: when an 11-bit prefix holds a whole code and its extra bits, the
    /// coefficient already extended (`fast_value`) and `(run << 4) | total length`
    /// (`fast_info`, 0 when it does not fit) - one lookup per coefficient.
    fast_value: [i16; 1 << LOOKUP_BITS],
    fast_info: [u8; 1 << LOOKUP_BITS],
    /// For stepping over AC coefficients whose values are not needed (1/8-scale luma): for
    /// each `SKIP_BITS`-bit prefix, the symbols that lie whole (code and extra bits) in it,
    /// read one after another, as `bits | eob << 4 | advance << 5`: the bits they take,
    /// whether the last is an end of block, and how far they move the coefficient index
    /// (run + 1 per coefficient, 16 per ZRL, the EOB itself not counted). 0 when not even
    /// the first symbol fits. Built by `with_skip` (empty otherwise: it costs more to build
    /// than it saves in a decode that needs every value).
    skip: Vec<u16>,
}

/// T.81 F.2.2.1 EXTEND: `bits` (the low `size` bits) as a signed value.
#[inline]
pub fn extend(bits: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if bits < (1 << (size - 1)) {
        bits - (1 << size) + 1
    } else {
        bits
    }
}

impl Huffman {
    /// From the 16 code-length counts and the symbols of a DHT segment.
    pub fn new(counts: &[u8], symbols: &[u8]) -> Result<Huffman> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if counts.len() != 16 || total > 256 || symbols.len() != total {
            return Err(Error::Corrupt);
        }
        let mut table = Huffman {
            lookup: [0; 1 << LOOKUP_BITS],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: [0; 256],
            fast_value: [0; 1 << LOOKUP_BITS],
            fast_info: [0; 1 << LOOKUP_BITS],
            skip: Vec::new(),
        };
        table.symbols[..total].copy_from_slice(symbols);
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            if n > 0 {
                table.offset[len as usize] = k as i32 - code as i32;
                for _ in 0..n {
                    // More codes than the length allows: not a prefix code.
                    if code >= (1 << len) {
                        return Err(Error::Corrupt);
                    }
                    if len <= LOOKUP_BITS {
                        let shift = LOOKUP_BITS - len;
                        let first = (code << shift) as usize;
                        let entry = ((len as u16) << 8) | symbols[k] as u16;
                        for slot in &mut table.lookup[first..first + (1 << shift)] {
                            *slot = entry;
                        }
                    }
                    code += 1;
                    k += 1;
                }
                table.max_code[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        for prefix in 0..(1usize << LOOKUP_BITS) {
            let entry = table.lookup[prefix];
            if entry == 0 {
                continue;
            }
            let (len, symbol) = ((entry >> 8) as u32, entry as u8);
            let (run, size) = ((symbol >> 4) as u32, (symbol & 15) as u32);
            // size 0 is EOB (run 0..14, an EOB run in progressive scans) or ZRL (run 15):
            // kept with value 0, which no coefficient has.
            if len + size > LOOKUP_BITS {
                continue;
            }
            let raw = (prefix as i32 >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
            table.fast_value[prefix] = extend(raw, size) as i16;
            table.fast_info[prefix] = ((run << 4) | (len + size)) as u8;
        }
        Ok(table)
    }
}

impl Huffman {
    /// This table with its `skip` table built, for `Bits::skip_entry`.
    pub fn with_skip(mut self) -> Huffman {
        self.skip = (0..1u32 << SKIP_BITS).map(|prefix| self.skip_entry(prefix)).collect();
        self
    }

    /// `skip[prefix]`: whole symbols read from the top of the `SKIP_BITS`-bit `prefix`.
    fn skip_entry(&self, prefix: u32) -> u16 {
        let (mut used, mut advance) = (0u32, 0u32);
        while used < SKIP_BITS {
            // The next LOOKUP_BITS bits after `used`, zero-filled past the prefix; a symbol
            // counts only if it ends within the prefix.
            let rest = SKIP_BITS - used;
            let window = if rest >= LOOKUP_BITS {
                prefix >> (rest - LOOKUP_BITS)
            } else {
                prefix << (LOOKUP_BITS - rest)
            } & ((1 << LOOKUP_BITS) - 1);
            let entry = self.lookup[window as usize];
            let (len, symbol) = ((entry >> 8) as u32, entry as u8);
            let (run, size) = ((symbol >> 4) as u32, (symbol & 15) as u32);
            if entry == 0 || len + size > rest {
                break;
            }
            used += len + size;
            if size == 0 && run < 15 {
                return (used | 16 | advance << 5) as u16; // EOB
            }
            advance += if size == 0 { 16 } else { run + 1 };
        }
        (used | advance << 5) as u16
    }
}

/// Reads the entropy-coded segment of a scan, MSB first, removing the 0x00 after each
/// 0xFF. At a marker or the end of data it feeds zero bits and counts them, so a decoder
/// that used any of them read past the data (`overran`).
pub struct Bits<'a> {
    data: &'a [u8],
    pub pos: usize,
    acc: u64,
    /// Bits in `acc` not yet consumed (the low `count` bits).
    count: u32,
    /// Zero bits appended after the data ran out; always the last ones in `acc`.
    padding: u32,
    stopped: bool,
}

impl<'a> Bits<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits { data, pos, acc: 0, count: 0, padding: 0, stopped: false }
    }

    fn fill(&mut self) {
        // Fast path: the next 8 bytes hold no 0xFF, so they go in as they are.
        if !self.stopped {
            if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let word = u64::from_be_bytes(word);
                let inverted = !word;
                let has_ff = (inverted.wrapping_sub(0x0101_0101_0101_0101)
                    & !inverted
                    & 0x8080_8080_8080_8080)
                    != 0;
                if !has_ff {
                    let take = (64 - self.count) / 8; // 1..=8 whole bytes fit
                    let bits = take * 8;
                    self.acc =
                        if bits == 64 { word } else { (self.acc << bits) | (word >> (64 - bits)) };
                    self.count += bits;
                    self.pos += take as usize;
                    return;
                }
            }
        }
        while self.count <= 56 {
            let mut byte = 0u8;
            if !self.stopped {
                match self.data.get(self.pos) {
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(&0) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.stopped = true, // a marker (or 0xFF at the very end)
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.stopped = true,
                }
            }
            if self.stopped {
                self.padding += 8;
            }
            self.acc = (self.acc << 8) | byte as u64;
            self.count += 8;
        }
    }

    /// Whether any consumed bit was padding: the segment ended before the decode did.
    pub fn overran(&self) -> bool {
        self.padding > self.count
    }

    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.count < n {
            self.fill();
        }
        ((self.acc >> (self.count - n)) & ((1u64 << n) - 1)) as u32
    }

    #[inline]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let v = self.peek(n);
        self.count -= n;
        v
    }

    #[inline]
    pub fn bit(&mut self) -> u32 {
        self.bits(1)
    }

    /// `n` bits as a signed value (T.81 F.2.2.1 EXTEND).
    #[inline]
    pub fn receive_extend(&mut self, n: u32) -> i32 {
        let v = self.bits(n) as i32;
        extend(v, n)
    }

    /// One AC symbol by the combined table: `Some((run, value))` when code and extra bits
    /// fit in the lookup, consumed; value 0 means EOB (run < 15) or ZRL (run 15). `None`
    /// otherwise (nothing consumed).
    #[inline]
    pub fn fast_ac(&mut self, table: &Huffman) -> Option<(usize, i32)> {
        let prefix = self.peek(LOOKUP_BITS) as usize;
        let info = table.fast_info[prefix];
        if info == 0 {
            return None;
        }
        self.count -= (info & 15) as u32;
        Some(((info >> 4) as usize, table.fast_value[prefix] as i32))
    }

    /// The `Huffman::skip` entry for the next bits (nothing consumed; see `consume`); 0
    /// when the table has none.
    #[inline]
    pub fn skip_entry(&mut self, table: &Huffman) -> u16 {
        let prefix = self.peek(SKIP_BITS) as usize;
        table.skip.get(prefix).copied().unwrap_or(0)
    }

    /// Consumes `n` bits already looked at (by `skip_entry`).
    #[inline]
    pub fn consume(&mut self, n: u32) {
        self.count -= n;
    }

    #[inline]
    pub fn decode(&mut self, table: &Huffman) -> Result<u8> {
        let entry = table.lookup[self.peek(LOOKUP_BITS) as usize];
        if entry != 0 {
            self.count -= (entry >> 8) as u32;
            return Ok(entry as u8);
        }
        let code16 = self.peek(16) as i32;
        for len in (LOOKUP_BITS + 1)..=16 {
            let code = code16 >> (16 - len);
            if code <= table.max_code[len as usize] {
                self.count -= len;
                let i = (table.offset[len as usize] + code) as usize;
                return table.symbols.get(i).copied().ok_or(Error::Corrupt);
            }
        }
        Err(Error::Corrupt)
    }

    /// Checks this interval did not run past its data, then steps over the RSTn marker
    /// that must follow (bytes before it, which a decoder out of sync leaves, are skipped).
    pub fn restart(&mut self) -> Result<()> {
        if self.overran() {
            return Err(Error::Truncated);
        }
        self.acc = 0;
        self.count = 0;
        self.padding = 0;
        self.stopped = false;
        let d = self.data;
        let mut p = self.pos;
        loop {
            match (d.get(p), d.get(p + 1)) {
                (Some(0xFF), Some(0xD0..=0xD7)) => {
                    self.pos = p + 2;
                    return Ok(());
                }
                (Some(0xFF), Some(0xFF)) | (Some(0xFF), Some(0)) => p += 1,
                (Some(0xFF), Some(_)) => return Err(Error::Corrupt),
                (Some(_), _) => p += 1,
                (None, _) => return Err(Error::Truncated),
            }
        }
    }

    /// Position of the first marker at or after the data read so far (the scan's end).
    pub fn next_marker(&self) -> usize {
        let d = self.data;
        let mut p = self.pos;
        while p + 1 < d.len() {
            if d[p] == 0xFF && d[p + 1] != 0 && !(0xD0..=0xD7).contains(&d[p + 1]) {
                return p;
            }
            p += 1;
        }
        d.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_short_and_long_codes() {
        // Lengths: 1 code of 2 bits, 1 of 3 bits, ..., one of 12 bits.
        let mut counts = [0u8; 16];
        counts[1] = 1; // 00
        counts[2] = 1; // 010
        counts[11] = 1; // 011000000000
        let table = Huffman::new(&counts, &[5, 7, 9]).unwrap();
        // 00 010 011000000000 then padding 1s: 0001 0011 0000 0000 0111 1111
        let data = [0b0001_0011, 0b0000_0000, 0b0111_1111];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.decode(&table), Ok(5));
        assert_eq!(bits.decode(&table), Ok(7));
        assert_eq!(bits.decode(&table), Ok(9));
        assert!(!bits.overran());
    }

    #[test]
    fn counts_bits_read_past_the_data() {
        let data = [0xAB];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.bits(8), 0xAB);
        assert!(!bits.overran());
        assert_eq!(bits.bits(1), 0);
        assert!(bits.overran());
    }

    #[test]
    fn unstuffs_ff00_and_stops_at_markers() {
        let data = [0xFF, 0x00, 0x12, 0xFF, 0xD9];
        let mut bits = Bits::new(&data, 0);
        assert_eq!(bits.bits(16), 0xFF12);
        assert!(!bits.overran());
        assert_eq!(bits.bits(8), 0);
        assert!(bits.overran());
        assert_eq!(bits.next_marker(), 3);
    }

    #[test]
    fn refuses_an_overfull_code() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_err());
    }
}
