//! Work limits for hostile files, decided from the frame header before any scan is decoded.
//!
//! A progressive JPEG can repeat scans: a few bytes per scan (an end-of-band run that covers
//! the image) make the decoder walk every block again, so a 30 KB file of 1,000 scans cost
//! seconds. Two limits bound that work, in the spirit of libjpeg-turbo's max-scans limit:
//!
//! - [`MAX_SCANS`] scans per file. libjpeg's standard progression has 10 scans for colour
//!   and 6 for greyscale; jpegtran and mozjpeg scripts stay within a few tens. 100 leaves
//!   ten times the standard script and stops files made of many cheap scans over one small
//!   component, which the block budget alone would let through.
//! - [`VISITS_PER_BLOCK`] times the frame's block count (every component's MCU-padded
//!   grid) in block visits, charged for each scan before it is decoded. The standard
//!   progression visits a luma block 6 times and a chroma block 4 times; 16 leaves more
//!   than twice that and makes the worst file cost at most 16 sequential decodes' worth of
//!   entropy decoding.
//!
//! And [`Progression`] refuses what T.81 G.1.1.1 rules out: a refinement scan for a
//! coefficient whose first pass has not been sent, or whose point transform does not follow
//! on from the previous scan's; a second first pass. Such scans carry no image data, so
//! they are refused as corrupt rather than decoded.
#![forbid(unsafe_code)]
use crate::huffman::{Error, Result};

/// Most scans a file may have.
pub const MAX_SCANS: u32 = 100;

/// Block visits allowed per block of the frame, over all scans.
pub const VISITS_PER_BLOCK: u64 = 16;

/// The work a decode did, or was refused at, and its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Scans started (including the one refused).
    pub scans: u32,
    /// 8x8 block visits charged so far: every block of every scan that was started.
    pub block_visits: u64,
    /// The block-visit budget, [`VISITS_PER_BLOCK`] times the frame's blocks (0 before the
    /// frame header).
    pub block_budget: u64,
}

impl Work {
    /// Sets the budget for a frame of `blocks` 8x8 blocks (all components).
    pub fn set_frame_blocks(&mut self, blocks: u64) {
        self.block_budget = blocks.saturating_mul(VISITS_PER_BLOCK);
    }

    /// Charges one scan that visits `blocks` blocks, before any of it is decoded.
    pub fn charge_scan(&mut self, blocks: u64) -> Result<()> {
        if self.scans >= MAX_SCANS {
            return Err(Error::TooManyScans);
        }
        self.scans += 1;
        let visits = self.block_visits.saturating_add(blocks);
        if visits > self.block_budget {
            return Err(Error::OverBudget);
        }
        self.block_visits = visits;
        Ok(())
    }
}

/// The successive-approximation state of one component's 64 coefficients (zigzag order):
/// `NOT_SENT`, or the point transform `Al` of the last scan that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progression([i8; 64]);

const NOT_SENT: i8 = -1;

impl Default for Progression {
    fn default() -> Progression {
        Progression([NOT_SENT; 64])
    }
}

impl Progression {
    /// Checks a progressive scan of coefficients `ss..=se` with approximation `ah`, `al`
    /// against what earlier scans sent, and records it.
    pub fn record(&mut self, ss: usize, se: usize, ah: u32, al: u32) -> Result<()> {
        if ah != 0 && al + 1 != ah {
            return Err(Error::Corrupt); // a refinement adds exactly one bit
        }
        let band = self.0.get_mut(ss..=se).ok_or(Error::Corrupt)?;
        let expected = if ah == 0 { NOT_SENT } else { ah as i8 };
        if band.iter().any(|&a| a != expected) {
            return Err(Error::Corrupt);
        }
        band.fill(al as i8);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refinement_needs_its_first_pass() {
        let mut p = Progression::default();
        assert_eq!(p.record(1, 63, 1, 0), Err(Error::Corrupt));
        p.record(1, 5, 0, 2).unwrap();
        // 6..=63 were never sent: refining 1..=63 is corrupt, 1..=5 is fine.
        assert_eq!(p.record(1, 63, 2, 1), Err(Error::Corrupt));
        p.record(1, 5, 2, 1).unwrap();
        assert_eq!(p.record(1, 5, 2, 1), Err(Error::Corrupt)); // Ah must follow Al
        assert_eq!(p.record(1, 5, 1, 1), Err(Error::Corrupt)); // Al = Ah - 1
        p.record(1, 5, 1, 0).unwrap();
        assert_eq!(p.record(1, 5, 0, 0), Err(Error::Corrupt)); // a second first pass
    }

    #[test]
    fn the_standard_progression_is_accepted() {
        // libjpeg's script for one component: DC al 1, AC 1-5 al 2, AC 6-63 al 2,
        // AC 1-63 refine 2->1, DC refine 1->0, AC 1-63 refine 1->0.
        let mut p = Progression::default();
        for (ss, se, ah, al) in [(0, 0, 0, 1), (1, 5, 0, 2), (6, 63, 0, 2), (1, 63, 2, 1)] {
            p.record(ss, se, ah, al).unwrap();
        }
        p.record(0, 0, 1, 0).unwrap();
        p.record(1, 63, 1, 0).unwrap();
    }

    #[test]
    fn scans_and_block_visits_are_capped_before_the_scan_runs() {
        let mut w = Work::default();
        w.set_frame_blocks(10);
        for _ in 0..16 {
            w.charge_scan(10).unwrap();
        }
        assert_eq!(w.charge_scan(1), Err(Error::OverBudget));
        assert_eq!(w.block_visits, 160);
        let mut w = Work::default();
        w.set_frame_blocks(1 << 20);
        for _ in 0..MAX_SCANS {
            w.charge_scan(1).unwrap();
        }
        assert_eq!(w.charge_scan(1), Err(Error::TooManyScans));
        assert_eq!(w.scans, MAX_SCANS);
    }
}
