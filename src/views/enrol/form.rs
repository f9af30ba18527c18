//! The enrolment form: what it holds, its checks in plain Chinese, and enrolling with it
//! (the engine's `enrolment` module does the work; the CLI uses the same).

use bianmin_engine::enrolment::Enrolment;
use bianmin_engine::outbox::Outbox;
use bianmin_protocol::sync::DeviceRole;
use chrono::Utc;

/// What an enrolment form holds, checked before anything is saved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnrolForm {
    pub server: String,
    pub code: String,
    pub person: String,
}

/// A 12-digit village code stands in for the one-time code on a phone without signal.
fn is_village_code(code: &str) -> bool {
    code.len() == 12 && code.chars().all(|c| c.is_ascii_digit())
}

/// Every problem with the form, in plain Chinese.
pub fn check(role: DeviceRole, f: &EnrolForm) -> Vec<String> {
    let mut out = Vec::new();
    let s = f.server.trim();
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() < 10 {
        out.push(
            "镇中心地址要以 https:// 开头，例如 https://bm.xiangyuan.gov.cn，请向镇中心索取。"
                .to_string(),
        );
    }
    let code = f.code.trim();
    let digits = code.chars().all(|c| c.is_ascii_digit());
    if code.is_empty() {
        out.push("请填写登记码（镇中心发的一次性登记码）。".to_string());
    } else if digits && code.len() != 12 {
        out.push("村登记码是12位数字（本村统计区划代码），请核对镇中心发的登记单。".to_string());
    } else if digits && role == DeviceRole::Staff {
        out.push("平板请使用镇中心发的一次性登记码，不能用村代码登记。".to_string());
    }
    if f.person.trim().is_empty() {
        out.push("请填写您的姓名，办件上会记录首问负责人。".to_string());
    }
    out
}

/// Enrols the device: online with a one-time code, or offline with a 12-digit village code
/// (the town confirms the device later). Nothing is saved here.
pub async fn enrol(outbox: &Outbox, f: &EnrolForm) -> Result<Enrolment, String> {
    let code = f.code.trim();
    if is_village_code(code) {
        return Enrolment::offline(outbox, &f.server, code, &f.person, Utc::now())
            .map_err(|e| e.user_message());
    }
    Enrolment::online(outbox, &f.server, code, &f.person, Utc::now())
        .await
        .map_err(|e| e.user_message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_explains_every_problem() {
        let f = EnrolForm {
            server: "bm".into(),
            code: "1404".into(),
            person: " ".into(),
        };
        assert_eq!(check(DeviceRole::Agent, &f).len(), 3);
        let ok = EnrolForm {
            server: "http://127.0.0.1:8080".into(),
            code: "140423101201".into(),
            person: "李".into(),
        };
        assert!(check(DeviceRole::Agent, &ok).is_empty());
        assert_eq!(
            check(DeviceRole::Staff, &ok).len(),
            1,
            "a tablet needs the town's one-time code"
        );
        assert!(check(
            DeviceRole::Staff,
            &EnrolForm {
                code: "K7Q2-MX4P".into(),
                ..ok
            }
        )
        .is_empty());
    }
}
