// A transparent activity that asks for the CAMERA permission at runtime, starts the system camera
// with a FileProvider URI in our private files (full resolution, not the thumbnail), and publishes
// the outcome in `result` for CameraPlugin.poll. It exists because the Dioxus activity's
// onActivityResult is not ours to override.
package cn.gov.xiangyuan.bianmin.capture

import android.Manifest
import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.os.Bundle
import android.provider.MediaStore
import androidx.core.app.ActivityCompat
import androidx.core.content.ContextCompat
import androidx.core.content.FileProvider
import java.io.File

class CaptureActivity : Activity() {
    companion object {
        /** null while pending; a path, "" for cancelled, or "error:..." once done. */
        @Volatile
        @JvmStatic
        var result: String? = null
        private const val REQUEST_PERMISSION = 4711
        private const val REQUEST_CAPTURE = 4712
    }

    private var photo: File? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        photo = savedInstanceState?.getString("photo")?.let { File(it) }
        if (savedInstanceState != null) return
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            launchCamera()
        } else {
            ActivityCompat.requestPermissions(this, arrayOf(Manifest.permission.CAMERA), REQUEST_PERMISSION)
        }
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        photo?.let { outState.putString("photo", it.path) }
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        if (requestCode != REQUEST_PERMISSION) return
        if (grantResults.isNotEmpty() && grantResults[0] == PackageManager.PERMISSION_GRANTED) {
            launchCamera()
        } else {
            finishWith("error:没有相机权限")
        }
    }

    private fun launchCamera() {
        try {
            val dir = File(filesDir, "capture").apply { mkdirs() }
            val file = File(dir, "photo-${System.currentTimeMillis()}.jpg")
            photo = file
            val uri = FileProvider.getUriForFile(this, "$packageName.bianmin.capture", file)
            val intent = Intent(MediaStore.ACTION_IMAGE_CAPTURE)
                .putExtra(MediaStore.EXTRA_OUTPUT, uri)
                .addFlags(Intent.FLAG_GRANT_WRITE_URI_PERMISSION or Intent.FLAG_GRANT_READ_URI_PERMISSION)
            if (intent.resolveActivity(packageManager) == null) {
                finishWith("error:手机上没有相机应用")
                return
            }
            startActivityForResult(intent, REQUEST_CAPTURE)
        } catch (e: Exception) {
            finishWith("error:" + (e.message ?: e.toString()))
        }
    }

    @Deprecated("Activity result API needs a ComponentActivity; this activity stays minimal")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (requestCode != REQUEST_CAPTURE) return
        val file = photo
        if (resultCode == RESULT_OK && file != null && file.length() > 0) {
            finishWith(file.path)
        } else {
            file?.delete()
            finishWith("")
        }
    }

    private fun finishWith(value: String) {
        result = value
        finish()
    }
}
