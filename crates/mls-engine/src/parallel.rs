//! Data parallelism for the independent public-key operations of one message (DESIGN §7): the
//! HPKE encryptions of a Commit's UpdatePath to large copath resolutions, and of a Welcome's
//! GroupSecrets to many new members. No I/O: scoped threads over chunks of the work, the
//! results in input order, and below [`PARALLEL_MIN`] items (or on one core) everything runs
//! on the calling thread.

use std::sync::OnceLock;

/// The number of items from which work is spread over threads: below it, the cost of starting
/// a thread (tens of microseconds) is not repaid.
pub const PARALLEL_MIN: usize = 32;

/// How many threads the machine offers (read once).
fn available_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` applied to every item, in order; the first error (in input order) is returned. With
/// [`PARALLEL_MIN`] items or more, the items are split into one contiguous chunk per available
/// thread (at least [`PARALLEL_MIN`] / 2 items each) and the chunks run on scoped threads.
pub fn try_map<T, U, E>(items: &[T], f: impl Fn(&T) -> Result<U, E> + Sync) -> Result<Vec<U>, E>
where
    T: Sync,
    U: Send,
    E: Send,
{
    let threads = available_threads().min(items.len() / (PARALLEL_MIN / 2));
    if items.len() < PARALLEL_MIN || threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Result<Vec<U>, E>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for worker in workers {
            // A panic in `f` is a bug, not an input error: it propagates as it would have on
            // the calling thread.
            let part = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            out.extend(part);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_kept_and_the_first_error_wins() {
        for n in [0, 1, PARALLEL_MIN - 1, PARALLEL_MIN, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let out: Result<Vec<usize>, ()> = try_map(&items, |x| Ok(x * 2));
            assert_eq!(
                out.unwrap(),
                items.iter().map(|x| x * 2).collect::<Vec<_>>()
            );
        }
        let items: Vec<usize> = (0..1000).collect();
        let out = try_map(
            &items,
            |&x| if x == 700 || x == 900 { Err(x) } else { Ok(x) },
        );
        assert_eq!(out, Err(700));
    }
}
