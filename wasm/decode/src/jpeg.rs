//! JPEG (ITU T.81) to RGBA at 1/1, 1/2, 1/4 or 1/8 scale: baseline and extended
//! sequential (SOF0/SOF1) and progressive (SOF2) Huffman frames, 8-bit, 1, 3 or 4
//! components with any sampling whose ratios are 1, 2 or 4, restart intervals, Adobe
//! RGB/YCbCr/CMYK/YCCK. Everything else (arithmetic coding, lossless, hierarchical,
//! 12-bit, DNL) is `Unsupported`, for the caller's full decoder.
//!
//! Each block goes through `idct::idct_reduced` straight to its reduced size, so a
//! 4000x3000 photo at 1/8 is never more than 500x375 pixels in memory. Chroma planes
//! that are subsampled are decoded at a larger reduced size when there is room (4:2:0
//! at 1/8 decodes chroma blocks to 2x2), so most scales need no upsampling at all;
//! otherwise each chroma sample is repeated (box upsampling).
#![forbid(unsafe_code)]
use crate::budget::{Progression, Work};
use crate::huffman::{Bits, Error, Huffman, Result};
use crate::idct::{idct_2x2_sparse, idct_dc, idct_reduced, Tables};
use std::vec::Vec;

/// Zigzag index -> natural (row-major) index (T.81 Figure A.6).
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per row and column in the MCU-padded grid.
    bw: usize,
    bh: usize,
    /// Blocks a non-interleaved scan covers (the component's own size, rounded up).
    own_w: usize,
    own_h: usize,
    /// Reduced size of one block, and how many times each sample repeats after it.
    nx: usize,
    ny: usize,
    rx: usize,
    ry: usize,
    /// u8 [bh * ny, bw * nx]: the decoded plane at reduced size.
    plane: Vec<u8>,
    /// Progressive only: i16 [bh * bw, 64], natural order, not dequantized.
    coefs: Vec<i16>,
    /// Progressive only: which coefficients earlier scans sent, at which precision.
    progression: Progression,
    dc_pred: i32,
    dc_table: usize,
    ac_table: usize,
}

/// The decoded, reduced image.
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// `[width u32 LE, height u32 LE]` then RGBA [height, width, 4]: the layout `jpeg_decode`
    /// hands to JavaScript, built in place so the pixels are never copied into it.
    pub data: Vec<u8>,
}

struct Decoder<'a> {
    data: &'a [u8],
    qt: [[u16; 64]; 4],
    dc: [Option<Box<Huffman>>; 4],
    ac: [Option<Box<Huffman>>; 4],
    /// Huffman tables as a DHT segment defined them (counts then symbols), built into
    /// `dc`/`ac` only when a scan uses them: a file of many DHT segments then costs a copy
    /// of each, not a table build (at most 8 per scan, and scans are capped).
    dc_spec: [Option<Vec<u8>>; 4],
    ac_spec: [Option<Vec<u8>>; 4],
    comps: Vec<Component>,
    width: usize,
    height: usize,
    progressive: bool,
    restart_interval: usize,
    mcux: usize,
    mcuy: usize,
    /// Reduced block size of a full-resolution component (8 / denominator).
    n: usize,
    adobe_transform: Option<u8>,
    jfif: bool,
    eobrun: u32,
    tables: Tables,
    /// Sequential decoding's block (kept all zero between blocks) and the natural
    /// positions written into it (at most 63 AC coefficients).
    block: [i32; 64],
    written: [u8; 64],
    frame_done: bool,
    scans: usize,
    /// Scans and block visits so far, against the budget set by the frame header.
    work: Work,
}

fn u16be(d: &[u8], at: usize) -> Result<usize> {
    match (d.get(at), d.get(at + 1)) {
        (Some(&a), Some(&b)) => Ok(((a as usize) << 8) | b as usize),
        _ => Err(Error::Truncated),
    }
}

fn zeroed<T: Clone + Default>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
    v.resize(n, T::default());
    Ok(v)
}

/// Decodes `data` at scale 1 / `denom` (1, 2, 4 or 8).
pub fn decode(data: &[u8], denom: usize) -> Result<Image> {
    decode_counted(data, denom, &mut Work::default())
}

/// [`decode`], leaving in `work` the scans and block visits it did (or was refused at).
pub fn decode_counted(data: &[u8], denom: usize, work: &mut Work) -> Result<Image> {
    *work = Work::default();
    if !matches!(denom, 1 | 2 | 4 | 8) {
        return Err(Error::Unsupported);
    }
    if data.len() < 2 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err(Error::Corrupt);
    }
    let mut d = Decoder {
        data,
        qt: [[0; 64]; 4],
        dc: [None, None, None, None],
        ac: [None, None, None, None],
        dc_spec: [None, None, None, None],
        ac_spec: [None, None, None, None],
        comps: Vec::new(),
        width: 0,
        height: 0,
        progressive: false,
        restart_interval: 0,
        mcux: 0,
        mcuy: 0,
        n: 8 / denom,
        adobe_transform: None,
        jfif: false,
        eobrun: 0,
        tables: Tables::new(),
        block: [0; 64],
        written: [0; 64],
        frame_done: false,
        scans: 0,
        work: Work::default(),
    };
    let run = d.run();
    *work = d.work;
    run?;
    d.finish()
}

impl<'a> Decoder<'a> {
    fn run(&mut self) -> Result<()> {
        let d = self.data;
        let mut pos = 2;
        loop {
            // Markers may be preceded by any number of 0xFF fill bytes.
            // A sequential image whose every component is decoded needs nothing after it:
            // a missing EOI is not worth refusing the photo for.
            if pos >= d.len() && self.frame_done {
                return Ok(());
            }
            if d.get(pos) != Some(&0xFF) {
                return Err(if pos >= d.len() { Error::Truncated } else { Error::Corrupt });
            }
            while d.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let marker = *d.get(pos).ok_or(Error::Truncated)?;
            pos += 1;
            match marker {
                0xD9 => return Ok(()),
                0xD0..=0xD7 | 0x01 => continue,
                0xDA => {
                    let len = u16be(d, pos)?;
                    let end = pos.checked_add(len).filter(|&e| e <= d.len() && len >= 2);
                    let end = end.ok_or(Error::Truncated)?;
                    pos = self.scan(&d[pos + 2..end], end)?;
                    continue;
                }
                _ => {}
            }
            let len = u16be(d, pos)?;
            if len < 2 {
                return Err(Error::Corrupt);
            }
            let end = pos.checked_add(len).ok_or(Error::Corrupt)?;
            let seg = d.get(pos + 2..end).ok_or(Error::Truncated)?;
            match marker {
                0xC0 | 0xC1 | 0xC2 => self.frame(seg, marker == 0xC2)?,
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDC => {
                    return Err(Error::Unsupported)
                }
                0xC4 => self.huffman_tables(seg)?,
                0xDB => self.quant_tables(seg)?,
                0xDD => {
                    self.restart_interval = u16be(seg, 0)?;
                }
                0xE0 => self.jfif = seg.starts_with(b"JFIF\0"),
                0xEE => {
                    if seg.len() >= 12 && seg.starts_with(b"Adobe") {
                        self.adobe_transform = Some(seg[11]);
                    }
                }
                _ => {} // APPn, COM, and anything else with a length: skipped
            }
            pos = end;
        }
    }

    fn quant_tables(&mut self, mut seg: &[u8]) -> Result<()> {
        while !seg.is_empty() {
            let (pq, tq) = ((seg[0] >> 4) as usize, (seg[0] & 15) as usize);
            let size = if pq == 0 { 64 } else { 128 };
            if tq > 3 || pq > 1 || seg.len() < 1 + size {
                return Err(Error::Corrupt);
            }
            for k in 0..64 {
                let q = if pq == 0 {
                    seg[1 + k] as u16
                } else {
                    ((seg[1 + 2 * k] as u16) << 8) | seg[2 + 2 * k] as u16
                };
                self.qt[tq][ZIGZAG[k]] = q;
            }
            seg = &seg[1 + size..];
        }
        Ok(())
    }

    fn huffman_tables(&mut self, mut seg: &[u8]) -> Result<()> {
        while !seg.is_empty() {
            if seg.len() < 17 {
                return Err(Error::Corrupt);
            }
            let (tc, th) = (seg[0] >> 4, (seg[0] & 15) as usize);
            if tc > 1 || th > 3 {
                return Err(Error::Corrupt);
            }
            let counts = &seg[1..17];
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let spec = seg.get(1..17 + total).ok_or(Error::Corrupt)?.to_vec();
            if tc == 0 {
                self.dc_spec[th] = Some(spec);
                self.dc[th] = None;
            } else {
                self.ac_spec[th] = Some(spec);
                self.ac[th] = None;
            }
            seg = &seg[17 + total..];
        }
        Ok(())
    }

    /// Builds the Huffman tables a scan uses (`dc`/`ac` per member) that a DHT segment
    /// defined since they were last built.
    fn build_tables(&mut self, members: &[usize], needs_dc: bool, needs_ac: bool) -> Result<()> {
        for &ci in members {
            let (td, ta) = (self.comps[ci].dc_table, self.comps[ci].ac_table);
            if needs_dc && self.dc[td].is_none() {
                let spec = self.dc_spec[td].as_deref().ok_or(Error::Corrupt)?;
                self.dc[td] = Some(Box::new(Huffman::new(&spec[..16], &spec[16..])?));
            }
            if needs_ac && self.ac[ta].is_none() {
                let spec = self.ac_spec[ta].as_deref().ok_or(Error::Corrupt)?;
                let mut table = Huffman::new(&spec[..16], &spec[16..])?;
                // At 1/8 full-resolution blocks keep only their DC: their AC codes are skipped.
                if self.n == 1 {
                    table = table.with_skip();
                }
                self.ac[ta] = Some(Box::new(table));
            }
        }
        Ok(())
    }

    fn frame(&mut self, seg: &[u8], progressive: bool) -> Result<()> {
        if !self.comps.is_empty() {
            return Err(Error::Corrupt); // a second frame
        }
        if seg.len() < 6 {
            return Err(Error::Corrupt);
        }
        if seg[0] != 8 {
            return Err(Error::Unsupported); // 12-bit
        }
        self.height = u16be(seg, 1)?;
        self.width = u16be(seg, 3)?;
        let nc = seg[5] as usize;
        if self.height == 0 {
            return Err(Error::Unsupported); // height from a DNL marker
        }
        if self.width == 0 {
            return Err(Error::Corrupt);
        }
        if !matches!(nc, 1 | 3 | 4) {
            return Err(Error::Unsupported);
        }
        if seg.len() < 6 + 3 * nc {
            return Err(Error::Corrupt);
        }
        self.progressive = progressive;
        let mut raw = Vec::new();
        for i in 0..nc {
            let c = &seg[6 + 3 * i..9 + 3 * i];
            let (h, v, tq) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return Err(Error::Corrupt);
            }
            raw.push((c[0], h, v, tq));
        }
        // A single-component image has one block per MCU whatever its factors say.
        if nc == 1 {
            raw[0].1 = 1;
            raw[0].2 = 1;
        }
        let hmax = raw.iter().map(|c| c.1).max().unwrap_or(1);
        let vmax = raw.iter().map(|c| c.2).max().unwrap_or(1);
        self.mcux = (self.width + 8 * hmax - 1) / (8 * hmax);
        self.mcuy = (self.height + 8 * vmax - 1) / (8 * vmax);
        for &(id, h, v, tq) in &raw {
            if hmax % h != 0 || vmax % v != 0 || hmax / h == 3 || vmax / v == 3 {
                return Err(Error::Unsupported);
            }
            let (fx, fy) = (self.n * hmax / h, self.n * vmax / v);
            let (nx, ny) = (fx.min(8), fy.min(8));
            let (bw, bh) = (self.mcux * h, self.mcuy * v);
            let cw = (self.width * h + hmax - 1) / hmax;
            let ch = (self.height * v + vmax - 1) / vmax;
            let plane = zeroed(bw * nx * bh * ny)?;
            let coefs = if progressive { zeroed(bw * bh * 64)? } else { Vec::new() };
            self.comps.push(Component {
                id,
                h,
                v,
                tq,
                bw,
                bh,
                own_w: (cw + 7) / 8,
                own_h: (ch + 7) / 8,
                nx,
                ny,
                rx: fx / nx,
                ry: fy / ny,
                plane,
                coefs,
                progression: Progression::default(),
                dc_pred: 0,
                dc_table: 0,
                ac_table: 0,
            });
        }
        let blocks = self.comps.iter().map(|c| (c.bw * c.bh) as u64).sum();
        self.work.set_frame_blocks(blocks);
        Ok(())
    }

    /// One scan: header `seg`, entropy-coded data from `start`. Returns the position of
    /// the marker after it.
    fn scan(&mut self, seg: &[u8], start: usize) -> Result<usize> {
        if self.comps.is_empty() {
            return Err(Error::Corrupt);
        }
        let ns = *seg.first().ok_or(Error::Corrupt)? as usize;
        if ns == 0 || ns > 4 || seg.len() < 4 + 2 * ns {
            return Err(Error::Corrupt);
        }
        let mut members = Vec::new();
        for i in 0..ns {
            let id = seg[1 + 2 * i];
            let tables = seg[2 + 2 * i];
            let ci = self.comps.iter().position(|c| c.id == id).ok_or(Error::Corrupt)?;
            let (td, ta) = ((tables >> 4) as usize, (tables & 15) as usize);
            if td > 3 || ta > 3 || members.contains(&ci) {
                return Err(Error::Corrupt);
            }
            self.comps[ci].dc_table = td;
            self.comps[ci].ac_table = ta;
            members.push(ci);
        }
        let p = 1 + 2 * ns;
        let (ss, se, ah, al) = (
            seg[p] as usize,
            seg[p + 1] as usize,
            (seg[p + 2] >> 4) as u32,
            (seg[p + 2] & 15) as u32,
        );
        if self.progressive {
            let dc_scan = ss == 0;
            if (dc_scan && se != 0) || (!dc_scan && (se < ss || se > 63 || ns != 1)) || al > 13 {
                return Err(Error::Corrupt);
            }
            for &ci in &members {
                self.comps[ci].progression.record(ss, se, ah, al)?;
            }
        } else if ss != 0 || se != 63 || ah != 0 || al != 0 {
            return Err(Error::Corrupt);
        }
        // Units to decode: MCUs of an interleaved scan, blocks of a single-component one.
        let (ux, uy) = if ns == 1 {
            let c = &self.comps[members[0]];
            (c.own_w, c.own_h)
        } else {
            (self.mcux, self.mcuy)
        };
        let per_unit: usize = if ns == 1 {
            1
        } else {
            members.iter().map(|&ci| self.comps[ci].h * self.comps[ci].v).sum()
        };
        self.work.charge_scan((ux * uy * per_unit) as u64)?;
        // Every table the scan uses must exist.
        let needs_dc = !self.progressive || (ss == 0 && ah == 0);
        let needs_ac = !self.progressive || ss > 0;
        self.build_tables(&members, needs_dc, needs_ac)?;
        for c in &mut self.comps {
            c.dc_pred = 0;
        }
        self.eobrun = 0;
        let mut bits = Bits::new(self.data, start);
        let scan = Scan { ss, se, ah, al };
        let mut left = self.restart_interval;
        for my in 0..uy {
            // Data that ran out stays out until a restart marker: stop at the row it did
            // (a 155-byte file declaring 7000x5700 would otherwise be decoded from zeros).
            if self.restart_interval == 0 && bits.overran() {
                return Err(Error::Truncated);
            }
            for mx in 0..ux {
                if self.restart_interval > 0 {
                    if left == 0 {
                        bits.restart()?;
                        for c in &mut self.comps {
                            c.dc_pred = 0;
                        }
                        self.eobrun = 0;
                        left = self.restart_interval;
                    }
                    left -= 1;
                }
                if ns == 1 {
                    self.block(&mut bits, members[0], mx, my, &scan)?;
                } else {
                    for &ci in &members {
                        let (h, v) = (self.comps[ci].h, self.comps[ci].v);
                        for by in 0..v {
                            for bx in 0..h {
                                self.block(&mut bits, ci, mx * h + bx, my * v + by, &scan)?;
                            }
                        }
                    }
                }
            }
        }
        if bits.overran() {
            return Err(Error::Truncated);
        }
        self.scans += 1;
        if !self.progressive && self.comps.len() == ns {
            self.frame_done = true;
        }
        Ok(bits.next_marker())
    }

    fn block(&mut self, bits: &mut Bits, ci: usize, bx: usize, by: usize, s: &Scan) -> Result<()> {
        if self.progressive {
            self.progressive_block(bits, ci, bx, by, s)
        } else {
            self.sequential_block(bits, ci, bx, by)
        }
    }

    fn sequential_block(&mut self, bits: &mut Bits, ci: usize, bx: usize, by: usize) -> Result<()> {
        let c = &mut self.comps[ci];
        let dc = self.dc[c.dc_table].as_deref().ok_or(Error::Corrupt)?;
        let ac = self.ac[c.ac_table].as_deref().ok_or(Error::Corrupt)?;
        let q = &self.qt[c.tq];
        // The block is kept zero between calls: only the positions written are cleared
        // after the IDCT (a 256-byte memset per block was a tenth of a 1/8-scale decode).
        let coefs = &mut self.block;
        let written = &mut self.written;
        let mut nwritten = 0;
        // The combined table serves DC too: its symbol is a size, so "run" must be 0.
        let diff = match bits.fast_ac(dc) {
            Some((0, v)) => v,
            Some(_) => return Err(Error::Corrupt),
            None => {
                let t = bits.decode(dc)? as u32;
                if t > 11 {
                    return Err(Error::Corrupt);
                }
                bits.receive_extend(t)
            }
        };
        c.dc_pred = c.dc_pred.wrapping_add(diff);
        coefs[0] = c.dc_pred.wrapping_mul(q[0] as i32);
        if c.nx == 1 && c.ny == 1 {
            // A 1x1 reduced block is the DC alone: the AC codes are only stepped over.
            skip_ac(bits, ac)?;
            let stride = c.bw;
            idct_dc(coefs[0], 1, 1, &mut c.plane[by * stride + bx..], stride);
            return Ok(());
        }
        let mut k = 1;
        while k < 64 {
            if let Some((r, v)) = bits.fast_ac(ac) {
                if v == 0 {
                    if r != 15 {
                        break; // EOB
                    }
                    k += 16;
                    continue;
                }
                k += r;
                if k > 63 {
                    return Err(Error::Corrupt);
                }
                let z = ZIGZAG[k];
                coefs[z] = v * q[z] as i32;
                written[nwritten] = z as u8;
                nwritten += 1;
                k += 1;
                continue;
            }
            let rs = bits.decode(ac)?;
            let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
            if s == 0 {
                if r != 15 {
                    break;
                }
                k += 16;
                continue;
            }
            k += r;
            if k > 63 {
                return Err(Error::Corrupt);
            }
            let z = ZIGZAG[k];
            coefs[z] = bits.receive_extend(s) * q[z] as i32;
            written[nwritten] = z as u8;
            nwritten += 1;
            k += 1;
        }
        let stride = c.bw * c.nx;
        let at = by * c.ny * stride + bx * c.nx;
        if nwritten == 0 {
            // No AC coefficient (most chroma blocks, flat areas): one value for the block.
            idct_dc(coefs[0], c.nx, c.ny, &mut c.plane[at..], stride);
        } else if c.nx == 2 && c.ny == 2 {
            let nonzero = &written[..nwritten];
            idct_2x2_sparse(&self.tables, coefs, nonzero, &mut c.plane[at..], stride);
        } else {
            idct_reduced(&self.tables, coefs, c.nx, c.ny, &mut c.plane[at..], stride);
        }
        for &z in &written[..nwritten] {
            coefs[z as usize] = 0;
        }
        Ok(())
    }

    fn progressive_block(
        &mut self,
        bits: &mut Bits,
        ci: usize,
        bx: usize,
        by: usize,
        s: &Scan,
    ) -> Result<()> {
        let c = &mut self.comps[ci];
        let at = (by * c.bw + bx) * 64;
        let block = &mut c.coefs[at..at + 64];
        if s.ss == 0 {
            // DC scans (T.81 G.1.2.1).
            if s.ah == 0 {
                let dc = self.dc[c.dc_table].as_deref().ok_or(Error::Corrupt)?;
                let t = bits.decode(dc)? as u32;
                if t > 11 {
                    return Err(Error::Corrupt);
                }
                c.dc_pred = c.dc_pred.wrapping_add(bits.receive_extend(t));
                block[0] = (c.dc_pred << s.al) as i16;
            } else if bits.bit() == 1 {
                block[0] |= 1 << s.al;
            }
            return Ok(());
        }
        let ac = self.ac[c.ac_table].as_deref().ok_or(Error::Corrupt)?;
        if s.ah == 0 {
            // AC first pass (G.1.2.2).
            if self.eobrun > 0 {
                self.eobrun -= 1;
                return Ok(());
            }
            let mut k = s.ss;
            while k <= s.se {
                let rs = bits.decode(ac)?;
                let (r, n) = ((rs >> 4) as u32, (rs & 15) as u32);
                if n == 0 {
                    if r < 15 {
                        self.eobrun = (1 << r) - 1 + bits.bits(r);
                        break;
                    }
                    k += 16;
                    continue;
                }
                k += r as usize;
                if k > 63 {
                    return Err(Error::Corrupt);
                }
                block[ZIGZAG[k]] = (bits.receive_extend(n) << s.al) as i16;
                k += 1;
            }
            return Ok(());
        }
        // AC refinement (G.1.2.3): one correction bit for every nonzero coefficient
        // passed, new coefficients of magnitude 1 << al placed on zero positions.
        let p1: i16 = 1 << s.al;
        let m1: i16 = -p1;
        let mut k = s.ss;
        let refine = |coef: &mut i16, bits: &mut Bits| {
            if bits.bit() == 1 && (*coef & p1) == 0 {
                *coef += if *coef >= 0 { p1 } else { m1 };
            }
        };
        if self.eobrun == 0 {
            while k <= s.se {
                let rs = bits.decode(ac)?;
                let (mut r, n) = ((rs >> 4) as i32, (rs & 15) as u32);
                let mut value = 0i16;
                if n != 0 {
                    if n != 1 {
                        return Err(Error::Corrupt);
                    }
                    value = if bits.bit() == 1 { p1 } else { m1 };
                } else if r != 15 {
                    self.eobrun = (1 << r) + bits.bits(r as u32);
                    break;
                }
                while k <= s.se {
                    let coef = &mut block[ZIGZAG[k]];
                    if *coef != 0 {
                        refine(coef, bits);
                    } else {
                        if r == 0 {
                            if value != 0 {
                                *coef = value;
                            }
                            k += 1;
                            break;
                        }
                        r -= 1;
                    }
                    k += 1;
                }
            }
        }
        if self.eobrun > 0 {
            while k <= s.se {
                let coef = &mut block[ZIGZAG[k]];
                if *coef != 0 {
                    refine(coef, bits);
                }
                k += 1;
            }
            self.eobrun -= 1;
        }
        Ok(())
    }

    /// Runs the IDCT of a progressive image and converts the planes to RGBA.
    fn finish(mut self) -> Result<Image> {
        if self.comps.is_empty() || self.scans == 0 {
            return Err(Error::Truncated);
        }
        if self.progressive {
            let mut coefs = [0i32; 64];
            for c in &mut self.comps {
                let q = &self.qt[c.tq];
                let stride = c.bw * c.nx;
                for by in 0..c.bh {
                    for bx in 0..c.bw {
                        let at = (by * c.bw + bx) * 64;
                        let block = &c.coefs[at..at + 64];
                        for i in 0..64 {
                            coefs[i] = block[i] as i32 * q[i] as i32;
                        }
                        let to = by * c.ny * stride + bx * c.nx;
                        idct_reduced(&self.tables, &coefs, c.nx, c.ny, &mut c.plane[to..], stride);
                    }
                }
                c.coefs = Vec::new();
            }
        } else if !self.frame_done {
            // Sequential scans that did not cover every component: the rest is missing.
            let covered = self.scans >= self.comps.len();
            if !covered {
                return Err(Error::Truncated);
            }
        }
        self.color()
    }

    fn color(&self) -> Result<Image> {
        let width = (self.width * self.n + 7) / 8;
        let height = (self.height * self.n + 7) / 8;
        let mut data: Vec<u8> = Vec::new();
        data.try_reserve_exact(8 + width * height * 4).map_err(|_| Error::OutOfMemory)?;
        data.extend_from_slice(&(width as u32).to_le_bytes());
        data.extend_from_slice(&(height as u32).to_le_bytes());
        // Each row is made in `line` and appended: no zeroing of the whole image first.
        let mut line = zeroed::<u8>(width * 4)?;
        let nc = self.comps.len();
        // Which input column each output x reads, per component.
        let mut cols: Vec<Vec<usize>> = Vec::new();
        for c in &self.comps {
            cols.push((0..width).map(|x| x / c.rx).collect());
        }
        let transform = match (nc, self.adobe_transform) {
            (3, Some(0)) => Transform::Rgb,
            (3, None) if !self.jfif && self.comps.iter().map(|c| c.id).eq(*b"RGB") => {
                Transform::Rgb
            }
            (3, _) => Transform::YCbCr,
            (4, Some(2)) => Transform::Ycck,
            (4, _) => Transform::Cmyk,
            _ => Transform::Gray,
        };
        // Adobe's CMYK is stored inverted (0 = full ink), as Photoshop writes it; libjpeg's
        // YCCK output follows the same convention.
        let inverted = self.adobe_transform.is_some();
        let mut wide = [zeroed::<u8>(width)?, zeroed::<u8>(width)?, zeroed::<u8>(width)?];
        for y in 0..height {
            let row = |i: usize| {
                let c = &self.comps[i];
                let stride = c.bw * c.nx;
                &c.plane[(y / c.ry) * stride..(y / c.ry + 1) * stride]
            };
            let out = &mut line[..];
            match transform {
                Transform::Gray => {
                    let (g, gx) = (row(0), &cols[0]);
                    for x in 0..width {
                        let v = g[gx[x]];
                        out[4 * x..4 * x + 4].copy_from_slice(&[v, v, v, 255]);
                    }
                }
                Transform::Rgb => {
                    let (r, g, b) = (row(0), row(1), row(2));
                    for x in 0..width {
                        let px = [r[cols[0][x]], g[cols[1][x]], b[cols[2][x]], 255];
                        out[4 * x..4 * x + 4].copy_from_slice(&px);
                    }
                }
                Transform::YCbCr => {
                    // Subsampled planes are first repeated out to full rows, so the pixel
                    // loop reads three rows in step (no per-pixel column tables).
                    for (i, buf) in wide.iter_mut().enumerate() {
                        let rx = self.comps[i].rx;
                        if rx > 1 {
                            let src = row(i);
                            if rx == 2 {
                                for (pair, &v) in buf[..width].chunks_exact_mut(2).zip(src) {
                                    pair[0] = v;
                                    pair[1] = v;
                                }
                                if width % 2 == 1 {
                                    buf[width - 1] = src[width / 2];
                                }
                            } else {
                                let shift = rx.trailing_zeros(); // rx is 4 (2 handled above)
                                for (x, v) in buf[..width].iter_mut().enumerate() {
                                    *v = src[x >> shift];
                                }
                            }
                        }
                    }
                    let pick = |i: usize| -> &[u8] {
                        if self.comps[i].rx > 1 {
                            &wide[i][..width]
                        } else {
                            row(i)
                        }
                    };
                    let (yy, cb, cr) = (pick(0), pick(1), pick(2));
                    ycc_row(yy, cb, cr, out);
                }
                Transform::Cmyk | Transform::Ycck => {
                    let (c0, c1, c2, k) = (row(0), row(1), row(2), row(3));
                    for x in 0..width {
                        let (a, b, c) = (c0[cols[0][x]], c1[cols[1][x]], c2[cols[2][x]]);
                        // YCCK holds inverted C, M, Y as YCbCr (libjpeg's jdcolor.c).
                        let [c, m, ye] = if transform == Transform::Ycck {
                            let [r, g, b] = ycc(a, b, c);
                            [255 - r, 255 - g, 255 - b]
                        } else {
                            [a, b, c]
                        };
                        let kk = k[cols[3][x]];
                        out[4 * x..4 * x + 4].copy_from_slice(&[
                            cmyk(c, kk, inverted),
                            cmyk(m, kk, inverted),
                            cmyk(ye, kk, inverted),
                            255,
                        ]);
                    }
                }
            }
            data.extend_from_slice(&line);
        }
        Ok(Image { width, height, data })
    }
}

/// Reads past the AC coefficients of one sequential block without keeping them (same
/// checks as `sequential_block`: a coefficient past position 63 is corrupt).
fn skip_ac(bits: &mut Bits, ac: &Huffman) -> Result<()> {
    let mut k = 1;
    while k < 64 {
        // Several symbols per lookup when they keep every coefficient within the block (and
        // an EOB is read only while k < 64, as below); otherwise one at a time.
        let e = bits.skip_entry(ac) as usize;
        let (used, eob, advance) = ((e & 15) as u32, e & 16 != 0, e >> 5);
        if used > 0 {
            if eob && k + advance < 64 {
                bits.consume(used);
                return Ok(());
            }
            if !eob && k + advance <= 64 {
                bits.consume(used);
                k += advance;
                continue;
            }
        }
        let r = if let Some((r, v)) = bits.fast_ac(ac) {
            if v == 0 {
                if r != 15 {
                    return Ok(()); // EOB
                }
                k += 16;
                continue;
            }
            r
        } else {
            let rs = bits.decode(ac)?;
            let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
            if s == 0 {
                if r != 15 {
                    return Ok(());
                }
                k += 16;
                continue;
            }
            bits.bits(s);
            r
        };
        k += r;
        if k > 63 {
            return Err(Error::Corrupt);
        }
        k += 1;
    }
    Ok(())
}

struct Scan {
    ss: usize,
    se: usize,
    ah: u32,
    al: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transform {
    Gray,
    Rgb,
    YCbCr,
    Cmyk,
    Ycck,
}

fn clamp(v: f32) -> u8 {
    if v <= 0.0 {
        0
    } else if v >= 255.0 {
        255
    } else {
        (v + 0.5) as u8
    }
}

/// `v` clamped to 0..=255; one predictable branch for the usual in-range value.
#[cfg(test)]
fn clamp_u8(v: i32) -> u8 {
    if (v as u32) <= 255 {
        v as u8
    } else if v < 0 {
        0
    } else {
        255
    }
}

/// JFIF YCbCr -> RGB in 16-bit fixed point by table, as libjpeg's jdcolor.c does; the
/// same function as `ycc` to within one level (`ycc` is kept for YCCK). The reference
/// that `ycc_row` is tested against.
#[cfg(test)]
struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    /// -0.344136 (cb - 128) - 0.714136 (cr - 128), scaled by 2^16, split per channel
    /// (the rounding half is folded into `cb_g`).
    cb_g: [i32; 256],
    cr_g: [i32; 256],
}

#[cfg(test)]
impl YccTables {
    fn new() -> YccTables {
        let mut t = YccTables { cr_r: [0; 256], cb_b: [0; 256], cb_g: [0; 256], cr_g: [0; 256] };
        for i in 0..256 {
            let v = i as f64 - 128.0;
            t.cr_r[i] = (1.402 * v).round() as i32;
            t.cb_b[i] = (1.772 * v).round() as i32;
            t.cb_g[i] = (-0.344_136 * v * 65536.0).round() as i32 + 32768;
            t.cr_g[i] = (-0.714_136 * v * 65536.0).round() as i32;
        }
        t
    }

    #[inline]
    fn rgba(&self, y: u8, cb: u8, cr: u8) -> [u8; 4] {
        let y = y as i32;
        let (cb, cr) = (cb as usize, cr as usize);
        let r = y + self.cr_r[cr];
        let g = y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16);
        let b = y + self.cb_b[cb];
        [clamp_u8(r), clamp_u8(g), clamp_u8(b), 255]
    }
}

/// JFIF YCbCr -> RGBA for one row: y, cb, cr: u8 [width] -> out: u8 [width, 4]. The
/// arithmetic of `YccTables::rgba` (the reference) with the products computed instead of
/// looked up, 8 pixels a step in i32 lanes so LLVM's SIMD128 vectorizer takes it (a table
/// lookup is a scalar load per channel); within one level of the tables (tested).
fn ycc_row(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    const W: usize = 8;
    let n = out.len() / 4;
    let (y, cb, cr) = (&y[..n], &cb[..n], &cr[..n]);
    let whole = n - n % W;
    let steps = out[..whole * 4]
        .chunks_exact_mut(4 * W)
        .zip(y.chunks_exact(W).zip(cb.chunks_exact(W).zip(cr.chunks_exact(W))));
    for (o, (y, (cb, cr))) in steps {
        let mut px = [0u32; W];
        for i in 0..W {
            px[i] = ycc_pixel(y[i], cb[i], cr[i]);
        }
        for i in 0..W {
            o[4 * i..4 * i + 4].copy_from_slice(&px[i].to_le_bytes());
        }
    }
    for x in whole..n {
        out[4 * x..4 * x + 4].copy_from_slice(&ycc_pixel(y[x], cb[x], cr[x]).to_le_bytes());
    }
}

/// One pixel of `ycc_row`, packed as RGBA in a little-endian u32 (alpha 255). The
/// constants are 1.402, 0.344136, 0.714136 and 1.772 scaled by 2^16.
#[inline(always)]
fn ycc_pixel(y: u8, cb: u8, cr: u8) -> u32 {
    let (y, cb, cr) = (y as i32, cb as i32 - 128, cr as i32 - 128);
    let r = y + ((91_881 * cr + 32_768) >> 16);
    let g = y + ((-22_554 * cb - 46_802 * cr + 32_768) >> 16);
    let b = y + ((116_130 * cb + 32_768) >> 16);
    let c = |v: i32| v.clamp(0, 255) as u32;
    c(r) | c(g) << 8 | c(b) << 16 | 0xff00_0000
}

/// JFIF YCbCr -> RGB (T.871 section 7).
#[inline]
fn ycc(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (y as f32, cb as f32 - 128.0, cr as f32 - 128.0);
    [clamp(y + 1.402 * cr), clamp(y - 0.344_136 * cb - 0.714_136 * cr), clamp(y + 1.772 * cb)]
}

/// One CMYK channel to RGB, the naive conversion (no colour profile) that libjpeg users
/// such as ImageMagick apply: `(255 - c) * (255 - k) / 255` for ink amounts, `c * k / 255`
/// for Adobe's inverted values; rounded.
#[inline]
fn cmyk(c: u8, k: u8, inverted: bool) -> u8 {
    let (c, k) = if inverted { (c as u32, k as u32) } else { (255 - c as u32, 255 - k as u32) };
    ((c * k + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u32) -> u32 {
        *seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        *seed >> 8
    }

    /// The plain definition `skip_ac` is checked against: one symbol at a time.
    fn skip_ac_reference(bits: &mut Bits, ac: &Huffman) -> Result<()> {
        let mut k = 1;
        while k < 64 {
            let rs = bits.decode(ac)?;
            let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
            if s == 0 {
                if r != 15 {
                    return Ok(());
                }
                k += 16;
                continue;
            }
            bits.bits(s);
            k += r;
            if k > 63 {
                return Err(Error::Corrupt);
            }
            k += 1;
        }
        Ok(())
    }

    /// A random prefix code over AC symbols (always EOB and ZRL, short and long codes).
    fn random_ac_table(seed: &mut u32) -> Huffman {
        let mut pool: Vec<u8> = vec![0x00, 0xF0];
        for run in 0..16u8 {
            for size in 1..=10u8 {
                pool.push(run << 4 | size);
            }
        }
        for i in (1..pool.len()).rev() {
            pool.swap(i, lcg(seed) as usize % (i + 1));
        }
        let mut counts = [0u8; 16];
        let (mut code, mut total) = (0u32, 0usize);
        for len in 1..=16usize {
            // Leave one code of this length unused, so longer codes still fit.
            let room = ((1u32 << len) - code).saturating_sub(1) as usize;
            let n = (lcg(seed) as usize % (room.min(40) + 1)).min(pool.len() - total);
            counts[len - 1] = n as u8;
            total += n;
            code = (code + n as u32) << 1;
        }
        // EOB first, so that most blocks end within the 64 coefficients.
        let symbols = &mut pool[..total];
        if let Some(i) = symbols.iter().position(|&s| s == 0) {
            symbols.swap(0, i);
        }
        Huffman::new(&counts, symbols).unwrap().with_skip()
    }

    #[test]
    fn skip_ac_matches_one_symbol_at_a_time_on_random_streams() {
        let mut seed = 5;
        let (mut eobs, mut corrupt) = (0, 0);
        for case in 0..3000 {
            let table = random_ac_table(&mut seed);
            let data: Vec<u8> = (0..40).map(|_| (lcg(&mut seed) & 0xFF) as u8 & 0xFE).collect();
            let (mut fast, mut slow) = (Bits::new(&data, 0), Bits::new(&data, 0));
            let (a, b) = (skip_ac(&mut fast, &table), skip_ac_reference(&mut slow, &table));
            assert_eq!(a, b, "case {case}");
            // Same bits consumed: the next 32 read the same.
            assert_eq!(fast.bits(16) << 16 | fast.bits(16), slow.bits(16) << 16 | slow.bits(16));
            eobs += (a == Ok(())) as u32;
            corrupt += (a == Err(Error::Corrupt)) as u32;
        }
        assert!(eobs > 100 && corrupt > 100, "{eobs} ends, {corrupt} corrupt: cases too one-sided");
    }

    #[test]
    fn ycc_row_matches_the_tables_within_one_level() {
        let t = YccTables::new();
        let mut worst = 0;
        for y in [0u8, 1, 16, 77, 128, 200, 235, 254, 255] {
            for cb in 0..=255u8 {
                // Rows of odd lengths take both the 8-pixel steps and the tail.
                let cr: Vec<u8> = (0..=255u8).collect();
                let (ys, cbs) = (vec![y; 256], vec![cb; 256]);
                for n in [256, 13, 7] {
                    let mut out = vec![0u8; 4 * n];
                    ycc_row(&ys[..n], &cbs[..n], &cr[..n], &mut out);
                    for (x, px) in out.chunks_exact(4).enumerate() {
                        let want = t.rgba(y, cb, cr[x]);
                        for c in 0..4 {
                            let d = (px[c] as i32 - want[c] as i32).abs();
                            assert!(d <= 1, "y {y} cb {cb} cr {}: {px:?} vs {want:?}", cr[x]);
                            worst = worst.max(d);
                        }
                    }
                }
            }
        }
        assert_eq!(worst, 1, "the fixed-point rounding differs somewhere (see YccTables)");
    }
}
