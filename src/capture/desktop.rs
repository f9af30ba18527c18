//! Desktop capture: a file input styled as a button (a USB document camera or the phone's photos copied over).

use dioxus::prelude::*;

use super::{mime_of, Photo};

pub fn button(
    label: String,
    tag: String,
    on_photo: EventHandler<Result<Photo, String>>,
) -> Element {
    rsx! {
        label { class: "btn capture-btn", "data-capture": "{tag}",
            "{label}"
            input {
                r#type: "file",
                accept: "image/*",
                onchange: move |e: FormEvent| async move {
                    let Some(file) = e.files().into_iter().next() else { return };
                    let name = file.name();
                    let result = match file.read_bytes().await {
                        Ok(b) if !b.is_empty() => Ok(Photo { mime: mime_of(&name).to_string(), bytes: b.to_vec(), name }),
                        Ok(_) => Err("照片是空的，请重新选择。".to_string()),
                        Err(e) => Err(format!("读取照片失败：{e}。请重新选择。")),
                    };
                    on_photo.call(result);
                },
            }
        }
    }
}
