// swift-tools-version:5.9
// Bianmin camera plugin for iOS, linked into the app by `dx bundle --platform ios` (manganis::ffi).
import PackageDescription

let package = Package(
    name: "CameraPlugin",
    platforms: [.iOS(.v15)],
    products: [.library(name: "CameraPlugin", type: .static, targets: ["CameraPlugin"])],
    targets: [.target(name: "CameraPlugin", path: "Sources/CameraPlugin")]
)
