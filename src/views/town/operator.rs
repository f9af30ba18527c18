//! 谁在办理: who is working on a shared town tablet. Town staff pick their name and enter their
//! PIN (two taps and six digits); the PIN stays in memory only, goes with every action for the
//! server to check, and is forgotten when someone else takes over, when 换人 is pressed, or
//! after a few idle minutes. A town without personal accounts yet shows its screens unlocked.

use std::time::{Duration, Instant};

use bianmin_protocol::sync::{StaffMember, StaffUnlock};
use dioxus::prelude::*;

use super::staff_transport;
use crate::services::use_enrolment;

/// The tablet locks after this long without a tap.
pub const IDLE_LOCK: Duration = Duration::from_secs(5 * 60);

/// The person working on the tablet now.
#[derive(Clone, PartialEq, Debug)]
pub struct Operator {
    pub name: String,
    /// Sent with each action; never written anywhere.
    pub pin: String,
    pub last_active: Instant,
}

impl Operator {
    /// Whether the tablet has been idle too long at `now`.
    pub fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.last_active) >= IDLE_LOCK
    }
}

#[derive(Clone, Copy)]
struct OperatorCtx(Signal<Option<Operator>>);

/// Provides the operator for every town screen (called once by the layout).
pub fn provide_operator() {
    use_context_provider(|| OperatorCtx(Signal::new(None)));
}

/// The person working on the tablet, if someone has unlocked it.
pub fn use_operator() -> Signal<Option<Operator>> {
    use_context::<OperatorCtx>().0
}

/// The name and PIN to send with an action: the operator's, or none on an unlocked town.
pub fn credentials(op: &Option<Operator>) -> (String, Option<String>) {
    match op {
        Some(o) => (o.name.clone(), Some(o.pin.clone())),
        None => (String::new(), None),
    }
}

/// Wraps a town screen: asks who is working when the town has personal accounts and nobody (or
/// nobody recently active) has unlocked the tablet; shows the person with 换人 otherwise.
#[component]
pub fn OperatorGate(children: Element) -> Element {
    let enrolment = use_enrolment();
    let mut operator = use_operator();
    let people = use_resource(move || async move {
        // Bound first: no borrow of the enrolment may live across the await (sync writes it).
        let t = staff_transport(&enrolment.read())?;
        t.staff_members().await.map_err(|e| e.staff_message())
    });
    // Auto-lock: checked every few seconds, so an idle tablet locks within the minute.
    use_future(move || async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let idle = operator
                .peek()
                .as_ref()
                .is_some_and(|o| o.idle(Instant::now()));
            if idle {
                operator.set(None);
            }
        }
    });
    let list: Vec<StaffMember> = match &*people.read() {
        None => {
            return rsx! { main { class: "page town", p { class: "muted", "正在读取工作人员名单…" } } }
        }
        Some(Ok(p)) => p.clone(),
        // Unreachable: the screens say so themselves, and nothing can be done there without the
        // server, which would ask for a PIN anyway.
        Some(Err(_)) => Vec::new(),
    };
    let current = operator.read().clone();
    if list.is_empty() {
        // No accounts in this town: actions record the tablet's enrolled person.
        return rsx! { {children} };
    }
    match current {
        None => rsx! { WhoIsWorking { people: list } },
        Some(op) => rsx! {
            div {
                class: "operator-scope",
                // Any tap counts as activity.
                onclick: move |_| {
                    if let Some(o) = operator.write().as_mut() {
                        o.last_active = Instant::now();
                    }
                },
                div { class: "operator",
                    span { id: "operator-name", "办理人：{op.name}" }
                    button { class: "btn secondary", id: "operator-switch", onclick: move |_| operator.set(None), "换人" }
                }
                {children}
            }
        },
    }
}

/// The lock screen: a button per person, then their PIN.
#[component]
fn WhoIsWorking(people: Vec<StaffMember>) -> Element {
    let enrolment = use_enrolment();
    let mut operator = use_operator();
    let mut chosen = use_signal(|| None::<String>);
    let mut pin = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let mut busy = use_signal(|| false);
    let mut submit = move || {
        let Some(name) = chosen() else { return };
        if busy() {
            return;
        }
        busy.set(true);
        let typed = pin();
        spawn(async move {
            let req = StaffUnlock {
                name: name.clone(),
                pin: typed.clone(),
            };
            let t = staff_transport(&enrolment.read());
            let r = match t {
                Ok(t) => t.unlock_staff(&req).await.map_err(|e| e.staff_message()),
                Err(e) => Err(e),
            };
            match r {
                Ok(m) => {
                    error.set(None);
                    operator.set(Some(Operator {
                        name: m.name,
                        pin: typed,
                        last_active: Instant::now(),
                    }));
                }
                Err(e) => error.set(Some(e)),
            }
            pin.set(String::new());
            busy.set(false);
        });
    };
    rsx! {
        main { class: "page town lock",
            h1 { "谁在办理？" }
            p { class: "muted", "请点自己的名字，再输入个人密码。离开时请点“换人”，平板闲置5分钟会自动锁定。" }
            div { class: "people",
                for p in people {
                    button {
                        key: "{p.name}",
                        class: if chosen().as_deref() == Some(p.name.as_str()) { "btn person chosen" } else { "btn person" },
                        "data-person": "{p.name}",
                        onclick: { let n = p.name.clone(); move |_| { chosen.set(Some(n.clone())); pin.set(String::new()); error.set(None); } },
                        "{p.name}"
                    }
                }
            }
            if let Some(name) = chosen() {
                form { class: "pin",
                    onsubmit: move |e| { e.prevent_default(); submit(); },
                    label { r#for: "pin", "{name} 的密码（6位数字）" }
                    input { id: "pin", r#type: "password", inputmode: "numeric", autocomplete: "off", maxlength: 6, autofocus: true,
                        value: "{pin}", oninput: move |e| pin.set(e.value().chars().filter(char::is_ascii_digit).take(6).collect()) }
                    button { class: "btn", id: "pin-ok", r#type: "submit", disabled: busy() || pin().len() != 6, "确定" }
                }
            }
            if let Some(e) = error() { p { class: "error", id: "pin-error", "{e}" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_operator_locks_and_credentials_follow_the_operator() {
        let now = Instant::now();
        let op = Operator {
            name: "王芳".into(),
            pin: "204816".into(),
            last_active: now,
        };
        assert!(!op.idle(now + Duration::from_secs(60)));
        assert!(op.idle(now + IDLE_LOCK));
        assert_eq!(
            credentials(&Some(op)),
            ("王芳".to_string(), Some("204816".to_string()))
        );
        assert_eq!(credentials(&None), (String::new(), None));
    }
}
