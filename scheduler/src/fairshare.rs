//! Fair sharing of each account-region's mutation budget among processes.
//!
//! Every mutation waits for a permit of its scope's FIFO semaphore, and an
//! actor holds at most one permit at a time (it executes its plan one
//! request after another, releasing the permit in between). So processes
//! take turns in arrival order: a process with a thousand requests queued
//! cannot starve one with a single request, and a process stuck in backoff
//! holds nothing. The cloud adapter's token buckets then set the pace.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use canon_cloud::Scope;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-scope FIFO semaphores.
pub struct FairShare {
    per_scope: usize,
    scopes: Mutex<HashMap<Scope, Arc<Semaphore>>>,
}

impl FairShare {
    /// At most `per_scope` mutations in flight per account and region.
    pub fn new(per_scope: usize) -> Self {
        FairShare {
            per_scope: per_scope.max(1),
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a turn to mutate in `scope`.
    pub async fn turn(&self, scope: &Scope) -> OwnedSemaphorePermit {
        let sem = {
            // A poisoned map is still a valid map; keep using it.
            let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
            scopes
                .entry(scope.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_scope)))
                .clone()
        };
        loop {
            // The semaphore is never closed, so acquiring cannot fail; if it
            // somehow did, make a fresh one rather than mutate unguarded.
            match sem.clone().acquire_owned().await {
                Ok(p) => return p,
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_are_taken_in_arrival_order() {
        let fair = Arc::new(FairShare::new(1));
        let scope = Scope::new("1", "us-west-2");
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = fair.turn(&scope).await;
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (fair, scope, order) = (fair.clone(), scope.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = fair.turn(&scope).await;
                order.lock().unwrap().push(i);
            }));
            // Let each task queue before the next one.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }
}
