//! Row-parallel helper: splits an output buffer into horizontal bands, one scoped thread each.
//! With `threads == 1` the work runs inline on the caller's thread (the benchmark's one-core run).

use crate::{CancelToken, ScanError};

/// Calls `f(first_row, band)` over bands of `row_len`-byte rows, checking `cancel` between
/// sub-bands of 64 rows so a cancel takes effect within a few milliseconds.
pub fn for_rows<F>(
    buf: &mut [u8],
    row_len: usize,
    threads: usize,
    cancel: &CancelToken,
    f: F,
) -> Result<(), ScanError>
where
    F: Fn(usize, &mut [u8]) + Sync,
{
    let rows = buf.len() / row_len.max(1);
    let threads = threads.clamp(1, rows.max(1));
    let per = rows.div_ceil(threads);
    let work = |first: usize, band: &mut [u8]| -> Result<(), ScanError> {
        for (k, sub) in band.chunks_mut(64 * row_len).enumerate() {
            cancel.check()?;
            f(first + k * 64, sub);
        }
        Ok(())
    };
    if threads == 1 {
        return work(0, buf);
    }
    std::thread::scope(|sc| {
        let handles: Vec<_> = buf
            .chunks_mut(per * row_len)
            .enumerate()
            .map(|(i, band)| {
                let work = &work;
                sc.spawn(move || work(i * per, band))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or(Err(ScanError::Internal("worker panicked".into())))
        })
    })
}
