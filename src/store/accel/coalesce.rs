//! Look-ups of single rows that arrive together share one query.
//!
//! Under load most of the cost of `GET /Users/{id}` or of a
//! `userName eq` look-up is not finding the row but issuing a statement:
//! on SQLite a hand-off to the connection's thread and back, on
//! PostgreSQL a round trip and the backend's per-statement work. A look-up
//! joins a queue; a few of the waiting callers at a time (the *leaders*)
//! each take what is queued for one group (a directory) and fetch it with
//! one `… IN (…)` statement, answering every caller in it. A leader first
//! yields to the runtime (twice at most, while few are queued) so that
//! requests read with its own can join; beyond that nothing waits for
//! company: batches form only from look-ups that have already arrived or
//! that would otherwise have queued for a connection.
//!
//! A caller whose answer cannot come from a batch (the leader's request
//! was dropped, or the shared statement failed) runs its look-up alone,
//! so it sees the error of its own statement, if any.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::store::Result;

/// Most keys fetched by one statement.
pub(crate) const MOST_PER_BATCH: usize = 32;

/// A leader with fewer callers than this queued lets the runtime run
/// other tasks (at most [`GATHER_YIELDS`] times) before taking its batch.
const GATHERED: usize = 4;

/// How many times a leader yields to let callers that arrived with it
/// queue: two trips through the scheduler, a few microseconds when it is
/// alone.
const GATHER_YIELDS: usize = 2;

/// What a batch tells each of its callers: the row found for its key (or
/// none), or that the shared statement failed.
type Reply<V> = std::result::Result<Option<V>, BatchFailed>;

/// The shared statement failed; the caller asks alone.
#[derive(Debug)]
struct BatchFailed;

struct Waiter<G, K, V> {
    group: G,
    key: K,
    reply: oneshot::Sender<Reply<V>>,
}

pub(crate) struct Coalescer<G, K, V> {
    waiting: Mutex<VecDeque<Waiter<G, K, V>>>,
    leaders: Arc<Semaphore>,
}

impl<G, K, V> Coalescer<G, K, V>
where
    G: Clone + PartialEq,
    K: Clone + PartialEq,
    V: Clone,
{
    /// At most `leaders` statements of this kind run at once; more callers
    /// queue and are answered by them.
    pub(crate) fn new(leaders: usize) -> Self {
        Coalescer {
            waiting: Mutex::new(VecDeque::new()),
            leaders: Arc::new(Semaphore::new(leaders.max(1))),
        }
    }

    /// The row for `key` in `group`. `fetch` reads the rows for a list of
    /// keys of one group (in any order, missing ones left out); `key_of`
    /// tells which key a row answers.
    pub(crate) async fn get<F, Fut>(
        &self,
        group: G,
        key: K,
        fetch: F,
        key_of: fn(&V) -> K,
    ) -> Result<Option<V>>
    where
        F: Fn(G, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>>>,
    {
        self.join(group, key, &fetch, |fetching, batch, turn| {
            batch.answer_when(fetching, turn, key_of)
        })
        .await
    }

    /// [`get`](Self::get) for statements that write: a batch runs on a
    /// task of its own, to its end, and answers its callers even if the
    /// caller that started it is dropped (a client that disconnected).
    /// Otherwise the others, unanswered, would run alone a write that may
    /// already have been committed for them.
    pub(crate) async fn get_detached<F, Fut>(
        &self,
        group: G,
        key: K,
        fetch: F,
        key_of: fn(&V) -> K,
    ) -> Result<Option<V>>
    where
        G: Send + 'static,
        K: Send + 'static,
        V: Send + 'static,
        F: Fn(G, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>>> + Send + 'static,
    {
        self.join(group, key, &fetch, |fetching, batch, turn| {
            tokio::spawn(batch.answer_when(fetching, turn, key_of));
            std::future::ready(())
        })
        .await
    }

    /// Queues `key`, then waits for its answer, leading batches whenever
    /// it gets a turn: `run` gets the batch's statement (started), the
    /// batch and the turn, and answers the batch's callers.
    async fn join<F, Fut, R, RFut>(&self, group: G, key: K, fetch: &F, run: R) -> Result<Option<V>>
    where
        F: Fn(G, Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>>>,
        R: Fn(Fut, Batch<G, K, V>, OwnedSemaphorePermit) -> RFut,
        RFut: Future<Output = ()>,
    {
        let (reply, mut answer) = oneshot::channel();
        self.waiting().push_back(Waiter {
            group: group.clone(),
            key: key.clone(),
            reply,
        });
        let alone = || async { Ok(fetch(group.clone(), vec![key.clone()]).await?.pop()) };
        loop {
            // A turn to lead: a permit of `leaders` (the semaphore is never
            // closed, so the result is always a permit).
            let turn = tokio::select! {
                biased;
                answered = &mut answer => {
                    return match answered {
                        Ok(Ok(found)) => Ok(found),
                        Ok(Err(BatchFailed)) | Err(_) => alone().await,
                    };
                }
                permit = self.leaders.clone().acquire_owned() => permit,
            };
            let Ok(turn) = turn else {
                unreachable!("the semaphore is never closed");
            };
            // Requests read in the same turn of the runtime as this one
            // are about to queue: let them, so that this statement answers
            // them too. Under load this turned most batches of one into
            // batches of several, and PostgreSQL's CPU per look-up fell by
            // a tenth (docs/PERFORMANCE.md).
            for _ in 0..GATHER_YIELDS {
                if self.waiting().len() >= GATHERED {
                    break;
                }
                tokio::task::yield_now().await;
            }
            // From here the batch taken is run to its end, even if another
            // leader answers this caller meanwhile: its callers wait on it.
            let Some(batch) = self.take_batch() else {
                // Another leader took this caller's key; it answers.
                drop(turn);
                return match answer.await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(BatchFailed)) | Err(_) => alone().await,
                };
            };
            let keys = batch.waiters.iter().map(|w| w.key.clone()).collect();
            run(fetch(batch.group.clone(), keys), batch, turn).await;
        }
    }

    /// The oldest waiter's group, with every waiter of that group (up to
    /// [`MOST_PER_BATCH`]), in queue order.
    fn take_batch(&self) -> Option<Batch<G, K, V>> {
        let mut waiting = self.waiting();
        let group = waiting.front()?.group.clone();
        let mut batch = Vec::new();
        let mut others = VecDeque::new();
        while let Some(w) = waiting.pop_front() {
            if w.group == group && batch.len() < MOST_PER_BATCH {
                batch.push(w);
            } else {
                others.push_back(w);
            }
        }
        *waiting = others;
        Some(Batch {
            group,
            waiters: batch,
        })
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiter<G, K, V>>> {
        // The queue is consistent between statements: a panic elsewhere
        // while it was locked leaves nothing half done.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Look-ups of one group, read by one statement.
struct Batch<G, K, V> {
    group: G,
    waiters: Vec<Waiter<G, K, V>>,
}

impl<G, K: PartialEq, V: Clone> Batch<G, K, V> {
    /// Waits for the batch's statement, gives the turn back, then answers
    /// the batch's callers.
    async fn answer_when(
        self,
        fetching: impl Future<Output = Result<Vec<V>>>,
        turn: OwnedSemaphorePermit,
        key_of: fn(&V) -> K,
    ) {
        let fetched = fetching.await;
        drop(turn);
        self.answer(fetched, key_of);
    }

    fn answer(self, fetched: Result<Vec<V>>, key_of: fn(&V) -> K) {
        for w in self.waiters {
            let reply = match &fetched {
                Ok(rows) => Ok(rows.iter().find(|row| key_of(row) == w.key).cloned()),
                Err(_) => Err(BatchFailed),
            };
            // A caller that has gone needs no answer.
            let _ = w.reply.send(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::store::StoreError;

    /// A fake table: `(group, key)` rows, with every statement recorded.
    #[derive(Default)]
    struct Table {
        statements: Mutex<Vec<(u8, Vec<u32>)>>,
        fail_batches: bool,
        /// A statement naming this key never finishes.
        hang_on: Option<u32>,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl Table {
        async fn fetch(&self, group: u8, keys: Vec<u32>) -> Result<Vec<(u8, u32)>> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            self.statements.lock().unwrap().push((group, keys.clone()));
            if self.hang_on.is_some_and(|k| keys.contains(&k)) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.fail_batches && keys.len() > 1 {
                return Err(StoreError::NotFound);
            }
            // Odd keys exist; even ones do not.
            Ok(keys
                .into_iter()
                .filter(|k| k % 2 == 1)
                .map(|k| (group, k))
                .collect())
        }
    }

    fn key_of(row: &(u8, u32)) -> u32 {
        row.1
    }

    async fn look_up_all(
        coalescer: &Arc<Coalescer<u8, u32, (u8, u32)>>,
        table: &Arc<Table>,
        lookups: Vec<(u8, u32)>,
    ) -> Vec<Result<Option<(u8, u32)>>> {
        let tasks: Vec<_> = lookups
            .into_iter()
            .map(|(group, key)| {
                let (c, t) = (coalescer.clone(), table.clone());
                tokio::spawn(
                    async move { c.get(group, key, |g, keys| t.fetch(g, keys), key_of).await },
                )
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    /// Concurrent look-ups share statements, each statement holds one
    /// group, no more than `leaders` run at once, and every caller gets
    /// its own row (or none).
    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_share_statements_per_group() {
        let coalescer = Arc::new(Coalescer::new(2));
        let table = Arc::new(Table::default());
        let lookups: Vec<(u8, u32)> = (0..40).map(|k| ((k % 2) as u8, k)).collect();
        let answers = look_up_all(&coalescer, &table, lookups.clone()).await;
        for ((group, key), answer) in lookups.iter().zip(answers) {
            let expected = (key % 2 == 1).then_some((*group, *key));
            assert_eq!(answer.unwrap(), expected, "key {key}");
        }
        let statements = table.statements.lock().unwrap();
        assert!(statements.len() < 40, "{} statements", statements.len());
        for (group, keys) in statements.iter() {
            assert!(keys.iter().all(|k| (k % 2) as u8 == *group), "{keys:?}");
            assert!(keys.len() <= MOST_PER_BATCH);
        }
        assert!(table.most_running.load(Ordering::SeqCst) <= 2);
    }

    /// Look-ups made at the same moment share the first statement: its
    /// leader lets the others queue before it takes its batch, rather than
    /// leaving them to a second statement.
    #[tokio::test(start_paused = true)]
    async fn lookups_made_together_share_the_first_statement() {
        let coalescer = Arc::new(Coalescer::new(1));
        let table = Arc::new(Table::default());
        let lookups: Vec<(u8, u32)> = (1..=5).map(|k| (0, k)).collect();
        look_up_all(&coalescer, &table, lookups).await;
        let statements = table.statements.lock().unwrap();
        assert_eq!(*statements, vec![(0, vec![1, 2, 3, 4, 5])]);
    }

    /// A look-up alone is not held back: it is one statement of one key.
    #[tokio::test(start_paused = true)]
    async fn a_lone_lookup_runs_at_once() {
        let coalescer = Arc::new(Coalescer::new(2));
        let table = Arc::new(Table::default());
        let answers = look_up_all(&coalescer, &table, vec![(1, 7)]).await;
        assert_eq!(answers[0].as_ref().unwrap(), &Some((1, 7)));
        assert_eq!(*table.statements.lock().unwrap(), vec![(1, vec![7])]);
    }

    /// When a shared statement fails, each caller asks alone and gets the
    /// outcome of its own statement.
    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_sends_its_callers_alone() {
        let coalescer = Arc::new(Coalescer::new(1));
        let table = Arc::new(Table {
            fail_batches: true,
            ..Table::default()
        });
        let lookups: Vec<(u8, u32)> = (0..10).map(|k| (0, k)).collect();
        let answers = look_up_all(&coalescer, &table, lookups.clone()).await;
        for ((_, key), answer) in lookups.iter().zip(answers) {
            assert_eq!(answer.unwrap(), (key % 2 == 1).then_some((0, *key)));
        }
        assert!(table
            .statements
            .lock()
            .unwrap()
            .iter()
            .any(|(_, keys)| keys.len() > 1));
    }

    /// A leader whose request is dropped mid-statement leaves its batch's
    /// other callers to ask alone, not waiting forever. On the paused
    /// clock: the order the sleeps arrange holds however loaded the
    /// machine is.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_leader_does_not_strand_its_batch() {
        let coalescer: Arc<Coalescer<u8, u32, (u8, u32)>> = Arc::new(Coalescer::new(1));
        let table = Arc::new(Table {
            hang_on: Some(100),
            ..Table::default()
        });
        let spawn = |key: u32| {
            let (c, t) = (coalescer.clone(), table.clone());
            tokio::spawn(async move { c.get(0, key, |g, keys| t.fetch(g, keys), key_of).await })
        };
        // The first caller leads alone; the next one queues first for the
        // lead, so it takes every key queued behind it, its own (which
        // hangs) included, and is then dropped.
        let first = spawn(1);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let dropped = spawn(100);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let followers: Vec<_> = (2..8).map(spawn).collect();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            table
                .statements
                .lock()
                .unwrap()
                .iter()
                .any(|(_, keys)| keys.contains(&100) && keys.contains(&2)),
            "the dropped caller led the followers' batch"
        );
        dropped.abort();
        assert_eq!(first.await.unwrap().unwrap(), Some((0, 1)));
        for (key, follower) in (2..8).zip(followers) {
            let answer = tokio::time::timeout(Duration::from_secs(5), follower)
                .await
                .expect("no caller is stranded")
                .unwrap();
            assert_eq!(answer.unwrap(), (key % 2 == 1).then_some((0, key)));
        }
    }

    /// A write's batch runs to its end and answers, though the caller that
    /// started it is gone; in place, dropping that caller stops it midway.
    #[tokio::test(start_paused = true)]
    async fn a_detached_batch_runs_to_its_end_when_its_caller_is_gone() {
        for detached in [true, false] {
            let coalescer = Arc::new(Coalescer::new(1));
            let table = Arc::new(Table::default());
            let (c, t) = (coalescer.clone(), table.clone());
            let caller = tokio::spawn(async move {
                let fetch = move |g, keys| {
                    let t = t.clone();
                    async move { t.fetch(g, keys).await }
                };
                if detached {
                    c.get_detached(1, 7, fetch, key_of).await
                } else {
                    c.get(1, 7, fetch, key_of).await
                }
            });
            // The statement takes 20 ms: drop its caller halfway.
            tokio::time::sleep(Duration::from_millis(5)).await;
            caller.abort();
            tokio::time::sleep(Duration::from_millis(60)).await;
            let unfinished = table.running.load(Ordering::SeqCst);
            assert_eq!(unfinished, usize::from(!detached), "detached: {detached}");
            // The turn came back either way: the next caller is answered.
            let next = coalescer
                .get(1, 9, |g, keys| table.fetch(g, keys), key_of)
                .await
                .unwrap();
            assert_eq!(next, Some((1, 9)));
        }
    }
}
