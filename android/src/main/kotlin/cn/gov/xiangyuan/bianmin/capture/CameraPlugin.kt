// Camera plugin called from Rust through manganis::ffi (src/capture/native.rs).
// `start` opens CaptureActivity and returns "" at once (or an error text); Rust then calls `poll`
// until it returns the photo's file path, "" when the agent cancelled, or "error:<reason>".
package cn.gov.xiangyuan.bianmin.capture

import android.app.Activity
import android.content.Intent

class CameraPlugin(private val activity: Activity) {
    fun start(): String {
        return try {
            CaptureActivity.result = null
            activity.startActivity(Intent(activity, CaptureActivity::class.java))
            ""
        } catch (e: Exception) {
            e.message ?: e.toString()
        }
    }

    fun poll(): String? = CaptureActivity.result
}
