//! Live refresh: after hydration, poll the project's data version twice a second and refetch
//! when it moved; while data keeps arriving, at most once a second.

/// Calls `refetch` within about half a second of new data being stored. Polling a version number
/// (a few bytes) rather than the data keeps an idle dashboard cheap; SSE would need a connection
/// per open tab and proxies that don't buffer. Does nothing on the server or without JavaScript.
pub fn refetch_on_new_data(refetch: impl Fn() + Clone + Send + Sync + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use crate::api::data_version;
        use leptos::prelude::*;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let last = Arc::new(AtomicU64::new(u64::MAX));
        let busy = Arc::new(AtomicBool::new(false));
        // Set by a refetch: the next tick is skipped, so a steady stream of new data refetches
        // once a second rather than on every tick.
        let resting = Arc::new(AtomicBool::new(false));
        let handle = set_interval_with_handle(
            move || {
                if resting.swap(false, Ordering::AcqRel) || busy.swap(true, Ordering::AcqRel) {
                    return;
                }
                let (last, busy, resting, refetch) =
                    (last.clone(), busy.clone(), resting.clone(), refetch.clone());
                leptos::task::spawn_local(async move {
                    if let Ok(v) = data_version().await.and_then(|p| p.unpack()) {
                        let before = last.swap(v, Ordering::AcqRel);
                        if before != u64::MAX && before != v {
                            refetch();
                            resting.store(true, Ordering::Release);
                        }
                    }
                    busy.store(false, Ordering::Release);
                });
            },
            std::time::Duration::from_millis(500),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = refetch;
}
