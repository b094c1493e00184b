//! An honest session kept busy beside a hostile test (issue 8 §8): logged in from
//! another address, it sends an `echo` every [`PERIOD`] and times each answer, before
//! the attack and during it. The test fails if any answer is missing or wrong; the
//! round-trip times are printed (run with `--nocapture`), never asserted.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;

/// Time between two echoes of the bystander.
const PERIOD: Duration = Duration::from_millis(10);

/// Echoes before the attack, so that "before" has a baseline.
const BASELINE: usize = 5;

/// The bystander's own address: not the attacker's (loopback: exempt from per-address
/// limits by default, as an unrelated browser behind another address would be).
pub const BYSTANDER_IP: [u8; 4] = [127, 0, 0, 77];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    Done,
}

/// Round trips, per phase.
#[derive(Debug, Default)]
struct Rtts {
    before: Vec<Duration>,
    during: Vec<Duration>,
}

/// A running honest session.
pub struct Bystander {
    phase: watch::Sender<Phase>,
    task: JoinHandle<Result<Rtts, String>>,
}

impl Bystander {
    /// Logs `user` in on `gw` from [`BYSTANDER_IP`] and returns once it has its
    /// baseline round trips; call [`Bystander::attack_begins`] next.
    pub async fn start(gw: &TestGateway, user: &str) -> Bystander {
        let mut ws = connect_from(gw.addr, BYSTANDER_IP.into()).await;
        login_ready(&mut ws, user, 1).await;
        let mut before = Vec::new();
        for id in 0..BASELINE as u64 {
            before.push(
                echo(&mut ws, 100 + id)
                    .await
                    .expect("the bystander's baseline echo"),
            );
        }
        let (phase, rx) = watch::channel(Phase::Before);
        let task = tokio::spawn(keep_busy(ws, rx, before));
        Bystander { phase, task }
    }

    /// From now on the round trips count as "during".
    pub fn attack_begins(&self) {
        let _ = self.phase.send(Phase::During);
    }

    /// Stops the bystander after one more echo, fails the test if any echo failed,
    /// and prints its round trips under `label`.
    pub async fn finish(self, label: &str) {
        let _ = self.phase.send(Phase::Done);
        let rtts = within("the bystander to stop", self.task)
            .await
            .expect("the bystander's task")
            .unwrap_or_else(|e| panic!("{label}: the honest session stopped working: {e}"));
        println!(
            "bystander RTT | {label} | before {} | during {}",
            summary(&rtts.before),
            summary(&rtts.during)
        );
    }
}

async fn keep_busy(
    mut ws: Client,
    phase: watch::Receiver<Phase>,
    before: Vec<Duration>,
) -> Result<Rtts, String> {
    let mut rtts = Rtts {
        before,
        during: Vec::new(),
    };
    let mut tick = tokio::time::interval(PERIOD);
    for id in 1000u64.. {
        tick.tick().await;
        let now = *phase.borrow();
        let rtt = echo(&mut ws, id).await?;
        match now {
            Phase::Before => rtts.before.push(rtt),
            Phase::During | Phase::Done => rtts.during.push(rtt),
        }
        if now == Phase::Done {
            break;
        }
    }
    Ok(rtts)
}

/// One `echo` and its round trip; `Err` says what went wrong.
async fn echo(ws: &mut Client, id: u64) -> Result<Duration, String> {
    let sent = Instant::now();
    let text = request("echo", json!({"bystander": id}), id).to_string();
    let exchange = async {
        ws.send(Message::text(text))
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        loop {
            let msg = match ws.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(f))) => return Err(format!("closed: {f:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(format!("read failed: {e}")),
                None => return Err("socket ended".to_owned()),
            };
            let reply: Value = serde_json::from_str(&msg).map_err(|e| format!("{e}: {msg}"))?;
            if reply["id"] != json!(id) {
                continue;
            }
            return match reply["result"]["bystander"] == json!(id) {
                true => Ok(sent.elapsed()),
                false => Err(format!("wrong answer: {reply}")),
            };
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {TIMEOUT:?}")))
}

/// `n=…, p50 …, max …` in milliseconds.
fn summary(rtts: &[Duration]) -> String {
    let mut ms: Vec<f64> = rtts.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    match (ms.get(ms.len() / 2), ms.last()) {
        (Some(p50), Some(max)) => format!("n={} p50 {p50:.2} ms max {max:.2} ms", ms.len()),
        _ => "n=0".to_owned(),
    }
}
