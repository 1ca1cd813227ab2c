//! Background load while a test breaks something: tasks that call `GET /v1/me` with a set of
//! credentials in a loop and count every answer by status, so a test can say what clients saw
//! *during* an outage (only 200s and 503s; never a 500, never a 401 for a live credential).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::tessera::Api;

/// Between two requests of one task: enough load to span every phase, little enough to leave
/// the two cores to the servers.
const PAUSE: Duration = Duration::from_millis(5);

/// "200", "503", … or "no answer" (connection refused or cut), with how often each came.
pub type Tally = BTreeMap<String, usize>;

pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<(String, JoinHandle<Tally>)>,
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic { stop: Arc::new(AtomicBool::new(false)), tasks: Vec::new() }
    }

    /// Starts a task calling `GET /v1/me` on `target` with each of `tokens` in turn.
    pub fn me(&mut self, target: &Api, tokens: Vec<String>) {
        assert!(!tokens.is_empty(), "traffic needs credentials");
        let name = target_name(&self.tasks, target);
        let (target, stop) = (target.clone(), Arc::clone(&self.stop));
        let task = tokio::spawn(async move {
            let mut tally = Tally::new();
            for token in tokens.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = match target.try_request(reqwest::Method::GET, "/v1/me", Some(token), None).await {
                    Ok(reply) => reply.status.as_u16().to_string(),
                    Err(_) => "no answer".to_owned(),
                };
                *tally.entry(outcome).or_default() += 1;
                tokio::time::sleep(PAUSE).await;
            }
            tally
        });
        self.tasks.push((name, task));
    }

    /// Stops every task and returns what each target answered.
    pub async fn finish(self) -> BTreeMap<String, Tally> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        for (name, task) in self.tasks {
            all.insert(name, task.await.expect("a traffic task does not panic"));
        }
        all
    }
}

/// The target's name, numbered when it already has a task.
fn target_name(tasks: &[(String, JoinHandle<Tally>)], target: &Api) -> String {
    let same = tasks.iter().filter(|(n, _)| n.split('#').next() == Some(target.name.as_str())).count();
    if same == 0 { target.name.clone() } else { format!("{}#{same}", target.name) }
}
