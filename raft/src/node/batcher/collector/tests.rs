//! The collector's decisions, on tokio's paused clock: when a batch
//! starts, what goes in it, and how long it waits for writers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Collector, LINGER_MAX, MAX_BATCH, PIPELINE_MIN};
use crate::command::{Command, Request};
use crate::node::batcher::{Hold, Pending};

fn collector() -> (Collector, mpsc::Sender<Pending>) {
    let (tx, rx) = mpsc::channel(10_000);
    (
        Collector::new(rx, tx.downgrade(), Arc::new(Hold::default())),
        tx,
    )
}

/// Proposes `n` requests; their answers are dropped.
async fn propose(tx: &mpsc::Sender<Pending>, n: usize) {
    for _ in 0..n {
        let (answer, _) = oneshot::channel();
        tx.send((Request::new(1, Command::Noop), answer))
            .await
            .unwrap();
    }
}

/// Answers the batch of `proposals` the collector handed out, as the
/// batcher's write task does (whatever is queued meanwhile counted as
/// writers).
fn answer(c: &Collector, proposals: usize) {
    c.in_flight().answered(proposals);
}

/// The next batch's size, checked to start at once.
async fn starts_at_once(c: &mut Collector) -> usize {
    let t = Instant::now();
    let n = c.next_batch().await.unwrap().len();
    assert_eq!(t.elapsed(), Duration::ZERO);
    n
}

/// Four writers, as the collector counts them: a batch of two answered
/// while two more wait.
async fn two_answered_two_waiting(c: &Collector, tx: &mpsc::Sender<Pending>) {
    c.in_flight().started();
    propose(tx, 2).await;
    c.in_flight().answered(2);
}

#[tokio::test(start_paused = true)]
async fn a_lone_writer_never_waits() {
    let (mut c, tx) = collector();
    for _ in 0..5 {
        propose(&tx, 1).await;
        assert_eq!(starts_at_once(&mut c).await, 1);
        answer(&c, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_few_writers_share_one_entry_instead_of_alternating() {
    let (mut c, tx) = collector();
    two_answered_two_waiting(&c, &tx).await;
    // The two answered come back 1 ms later.
    let back = tx.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        propose(&back, 2).await;
    });
    let t = Instant::now();
    let batch = c.next_batch().await.unwrap();
    assert_eq!(batch.len(), 4, "the two waiting and the two answered");
    assert_eq!(t.elapsed(), Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn writers_who_do_not_come_back_cost_one_wait_of_linger_max() {
    let (mut c, tx) = collector();
    two_answered_two_waiting(&c, &tx).await;
    // The two answered never come back.
    let t = Instant::now();
    let batch = c.next_batch().await.unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(t.elapsed(), LINGER_MAX);
    // The collector now expects the two that came, and waits for no one.
    answer(&c, 2);
    propose(&tx, 2).await;
    assert_eq!(starts_at_once(&mut c).await, 2);
}

#[tokio::test(start_paused = true)]
async fn many_writers_pipeline_instead_of_waiting() {
    let (mut c, tx) = collector();
    c.in_flight().started();
    propose(&tx, 40).await;
    c.in_flight().answered(24);
    // 64 writers seen; 40 wait: a batch of them starts at once.
    let t = Instant::now();
    assert_eq!(c.next_batch().await.unwrap().len(), 40);
    // While it is in flight, fewer than PIPELINE_MIN wait for it ...
    propose(&tx, PIPELINE_MIN - 1).await;
    let waiting = tokio::time::timeout(Duration::from_secs(1), c.next_batch()).await;
    assert!(waiting.is_err(), "a batch started beside one in flight");
    assert_eq!(t.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn enough_proposals_start_a_batch_beside_one_in_flight() {
    let (mut c, tx) = collector();
    c.in_flight().started();
    propose(&tx, PIPELINE_MIN).await;
    assert_eq!(starts_at_once(&mut c).await, PIPELINE_MIN);
}

#[tokio::test(start_paused = true)]
async fn a_batch_in_flight_holds_a_few_until_it_is_answered() {
    let (mut c, tx) = collector();
    c.in_flight().started();
    propose(&tx, 3).await;
    let in_flight = c.in_flight().clone();
    let answer = async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        // One writer answered, three waiting (one of them held by the
        // collector): four writers. The one answered does not come back,
        // so the three wait LINGER_MAX for it.
        in_flight.answered(1);
    };
    let t = Instant::now();
    let (batch, ()) = tokio::join!(c.next_batch(), answer);
    assert_eq!(batch.unwrap().len(), 3);
    assert_eq!(t.elapsed(), Duration::from_millis(1) + LINGER_MAX);
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_leaves_the_rest_for_the_next() {
    let (mut c, tx) = collector();
    propose(&tx, MAX_BATCH + 88).await;
    assert_eq!(c.next_batch().await.unwrap().len(), MAX_BATCH);
    assert_eq!(c.next_batch().await.unwrap().len(), 88);
}

#[tokio::test(start_paused = true)]
async fn a_lingering_batch_goes_when_every_proposer_is_gone() {
    let (mut c, tx) = collector();
    two_answered_two_waiting(&c, &tx).await;
    drop(tx);
    assert_eq!(starts_at_once(&mut c).await, 2);
    assert!(c.next_batch().await.is_none());
}
