//! Work over a few items at once (layers being pulled or pushed), on plain threads.

use std::sync::Mutex;

/// `work` applied to every item on up to `threads` threads; the results in the items' order,
/// or the first error. After an error no new item is started (those under way finish).
pub fn map<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    work: impl Fn(&I) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let queue = Mutex::new(items.iter().enumerate());
    let results: Mutex<Vec<Option<T>>> = Mutex::new(items.iter().map(|_| None).collect());
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| {
                loop {
                    if first_error.lock().expect("no panics while held").is_some() {
                        return;
                    }
                    let Some((index, item)) = queue.lock().expect("no panics while held").next()
                    else {
                        return;
                    };
                    match work(item) {
                        Ok(r) => results.lock().expect("no panics while held")[index] = Some(r),
                        Err(e) => {
                            first_error
                                .lock()
                                .expect("no panics while held")
                                .get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("threads joined") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|r| r.expect("every item has a result when none failed"))
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_their_order_and_the_first_error_wins() {
        let out = super::map(&[3, 1, 2], 2, |n| Ok(n * 10)).unwrap();
        assert_eq!(out, [30, 10, 20]);
        let err = super::map(&[1, 2, 3], 1, |n| {
            if *n == 2 {
                anyhow::bail!("two")
            }
            Ok(*n)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "two");
    }
}
