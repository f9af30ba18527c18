//! The 一次性告知 notice: everything the resident needs, as plain text for the guide screen and the CLI.

use std::fmt::Write as _;

use super::{CaptureKind, Contact, Guide, Item, Material};

impl Material {
    /// How many photos and of what, in words: "正面、反面（每位家庭成员各一套）".
    pub fn pages_text(&self) -> String {
        let mut s = self.pages.join("、");
        if self.more_pages {
            s.push_str("等，多页的逐页拍");
        }
        if let Some(group) = &self.per {
            let _ = write!(s, "（{}中每人各一套）", group_label(group));
        }
        s
    }

    /// Whether it is always required, sometimes, or optional, in words.
    pub fn need_text(&self) -> &'static str {
        if self.required {
            "必交"
        } else if self.required_if.is_some() {
            "符合条件的必交"
        } else {
            "视情提交"
        }
    }
}

fn group_label(key: &str) -> &str {
    match key {
        "members" => "家庭成员",
        _ => "名单",
    }
}

/// The text for a contact: the number, or a plain statement that the county has not published it yet.
pub fn contact_text(contact: Option<&Contact>) -> String {
    match contact {
        Some(c) if !c.phone.trim().is_empty() => format!("{}：{}", c.label, c.phone),
        Some(c) => format!("{}：待县行政审批局公布", c.label),
        None => "监督电话待县行政审批局公布".to_string(),
    }
}

impl Guide {
    /// The complete 一次性告知 notice for `item`, as plain text the app prints or shows; `contact` is the
    /// county contact the guide names.
    pub fn notice(&self, item: &Item, contact: Option<&Contact>) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(s, "一次性告知书");
        let _ = writeln!(s, "事项名称：{}（编码 {}）", item.name, item.code);
        let _ = writeln!(s, "事项类型：{}", item.kind);
        if !item.method.is_empty() {
            let _ = writeln!(s, "办理方式：{}", item.method);
        }
        let _ = writeln!(s, "办理层级：{}", self.handling_level);
        let _ = writeln!(s, "\n一、申请条件\n{}", self.summary);
        for c in &self.conditions {
            let _ = writeln!(s, "· {c}");
        }
        if !self.legal_basis.is_empty() {
            let _ = writeln!(s, "\n二、设定依据");
            for (i, b) in self.legal_basis.iter().enumerate() {
                let _ = writeln!(s, "{}. {}", i + 1, b);
            }
        }
        let _ = writeln!(s, "\n三、申请材料（请一次性备齐）");
        for (i, m) in self.materials.iter().enumerate() {
            let unit = match m.capture {
                CaptureKind::Card => "证件",
                CaptureKind::Page => "文件",
            };
            let _ = write!(
                s,
                "{}. {}：{}（{}），拍：{}（{}）",
                i + 1,
                m.name,
                m.form.label(),
                unit,
                m.pages_text(),
                m.need_text()
            );
            if !m.note.is_empty() {
                let _ = write!(s, "；{}", m.note);
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "\n四、收费标准\n{}", self.fee);
        let _ = writeln!(
            s,
            "\n五、承诺时限\n{} 个工作日（自受理之日的次日起计算，补正材料后重新计算）",
            self.promised_days
        );
        if !self.procedure.is_empty() {
            let _ = writeln!(s, "\n六、办理流程");
            for (i, p) in self.procedure.iter().enumerate() {
                let _ = writeln!(s, "{}. {}", i + 1, p);
            }
        }
        let _ = writeln!(s, "\n七、监督电话\n{}", contact_text(contact));
        if !self.to_confirm.is_empty() {
            let _ = writeln!(s, "\n待县里确认的内容");
            for c in &self.to_confirm {
                let _ = writeln!(s, "· {c}");
            }
        }
        if self.draft {
            let _ = writeln!(
                s,
                "\n说明：本办事指南为草稿，具体内容以县行政审批局最终确认为准。"
            );
        }
        s
    }
}
