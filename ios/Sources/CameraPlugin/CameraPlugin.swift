// Camera plugin called from Rust through manganis::ffi (src/capture/native.rs).
// `start` presents UIImagePickerController with the camera and returns "" (or an error text);
// Rust then calls `poll` until it returns the JPEG's path, "" when cancelled, or "error:<reason>".
// The camera usage description (NSCameraUsageDescription) comes from Dioxus.toml's [ios.plist].
import AVFoundation
import Foundation
import UIKit

@objc(CameraPlugin)
public class CameraPlugin: NSObject, UIImagePickerControllerDelegate, UINavigationControllerDelegate {
    private var result: String?
    private var pending = false

    @objc public func start() -> String {
        guard UIImagePickerController.isSourceTypeAvailable(.camera) else { return "这台设备没有相机" }
        result = nil
        pending = true
        DispatchQueue.main.async { self.requestAndPresent() }
        return ""
    }

    @objc public func poll() -> String? {
        return pending ? nil : result
    }

    private func requestAndPresent() {
        AVCaptureDevice.requestAccess(for: .video) { granted in
            DispatchQueue.main.async {
                if granted { self.present() } else { self.finish("error:没有相机权限") }
            }
        }
    }

    private func present() {
        guard let root = UIApplication.shared.connectedScenes
            .compactMap({ ($0 as? UIWindowScene)?.keyWindow?.rootViewController }).first
        else {
            finish("error:找不到应用窗口")
            return
        }
        let picker = UIImagePickerController()
        picker.sourceType = .camera
        picker.delegate = self
        root.present(picker, animated: true)
    }

    public func imagePickerController(_ picker: UIImagePickerController,
                                      didFinishPickingMediaWithInfo info: [UIImagePickerController.InfoKey: Any]) {
        picker.dismiss(animated: true)
        guard let image = info[.originalImage] as? UIImage, let data = image.jpegData(compressionQuality: 0.9) else {
            finish("error:没有拿到照片")
            return
        }
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
            .appendingPathComponent("bianmin/capture", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let file = dir.appendingPathComponent("photo-\(Int(Date().timeIntervalSince1970 * 1000)).jpg")
            try data.write(to: file, options: .completeFileProtection)
            finish(file.path)
        } catch {
            finish("error:\(error.localizedDescription)")
        }
    }

    public func imagePickerControllerDidCancel(_ picker: UIImagePickerController) {
        picker.dismiss(animated: true)
        finish("")
    }

    private func finish(_ value: String) {
        result = value
        pending = false
    }
}
