//! Where the outbox's device key comes from on each platform.
//!
//! Desktop: the engine's `FileKeyStore` (a 0600 file in the data directory). Android: the device key
//! is a random 32-byte key stored only wrapped — AES-256-GCM under a key generated inside the Android
//! Keystore (hardware-backed where the phone has it), which never leaves it. A copy of the data
//! directory (a backup, a rooted phone's file dump) is then useless without that phone. iOS keeps the
//! file store inside the app sandbox until a Keychain store is written (README, known gaps).

use std::path::Path;

use bianmin_engine::outbox::KeyStore;

/// The key store for the data directory `dir` on this platform.
pub fn for_data_dir(dir: &Path) -> Box<dyn KeyStore> {
    #[cfg(target_os = "android")]
    {
        Box::new(android::AndroidKeyStore::new(
            dir.join("device.key.wrapped"),
        ))
    }
    #[cfg(not(target_os = "android"))]
    {
        Box::new(bianmin_engine::outbox::FileKeyStore::new(
            dir.join("device.key"),
        ))
    }
}

#[cfg(target_os = "android")]
mod android {
    use std::path::PathBuf;

    use bianmin_engine::outbox::crypto::{Key, KeyStoreError};
    use bianmin_engine::outbox::KeyStore;
    use manganis::jni::objects::{JByteArray, JObject, JValue};
    use manganis::jni::JNIEnv;

    /// Alias of the wrapping key inside the Android Keystore.
    const ALIAS: &str = "bianmin-device-wrap";
    /// GCM nonce length Android's provider uses.
    const IV_LEN: usize = 12;

    pub struct AndroidKeyStore {
        wrapped: PathBuf,
    }

    impl AndroidKeyStore {
        pub fn new(wrapped: PathBuf) -> AndroidKeyStore {
            AndroidKeyStore { wrapped }
        }
    }

    fn platform(what: &str, e: impl std::fmt::Display) -> KeyStoreError {
        KeyStoreError::Platform(format!("{what}: {e}"))
    }

    /// Runs `f` with a JNI environment; a pending Java exception is cleared and reported.
    fn with_env<R>(
        f: impl FnOnce(&mut JNIEnv) -> manganis::jni::errors::Result<R>,
    ) -> Result<R, KeyStoreError> {
        manganis::android::with_activity(|env, _activity| {
            let r = f(env);
            if env.exception_check().unwrap_or(false) {
                let _ = env.exception_describe();
                let _ = env.exception_clear();
            }
            Some(r.map_err(|e| platform("Android Keystore call", e)))
        })
        .unwrap_or_else(|| Err(KeyStoreError::Platform("no JNI environment".into())))
    }

    /// The wrapping key from the Android Keystore, generated on first use.
    fn wrapping_key<'a>(env: &mut JNIEnv<'a>) -> manganis::jni::errors::Result<JObject<'a>> {
        let provider = env.new_string("AndroidKeyStore")?;
        let ks = env
            .call_static_method(
                "java/security/KeyStore",
                "getInstance",
                "(Ljava/lang/String;)Ljava/security/KeyStore;",
                &[JValue::Object(&provider)],
            )?
            .l()?;
        env.call_method(
            &ks,
            "load",
            "(Ljava/security/KeyStore$LoadStoreParameter;)V",
            &[JValue::Object(&JObject::null())],
        )?;
        let alias = env.new_string(ALIAS)?;
        let present = env
            .call_method(
                &ks,
                "containsAlias",
                "(Ljava/lang/String;)Z",
                &[JValue::Object(&alias)],
            )?
            .z()?;
        if !present {
            let aes = env.new_string("AES")?;
            let gen = env
                .call_static_method(
                    "javax/crypto/KeyGenerator",
                    "getInstance",
                    "(Ljava/lang/String;Ljava/lang/String;)Ljavax/crypto/KeyGenerator;",
                    &[JValue::Object(&aes), JValue::Object(&provider)],
                )?
                .l()?;
            // PURPOSE_ENCRYPT | PURPOSE_DECRYPT
            let builder = env.new_object(
                "android/security/keystore/KeyGenParameterSpec$Builder",
                "(Ljava/lang/String;I)V",
                &[JValue::Object(&alias), JValue::Int(3)],
            )?;
            let builder_sig = "Landroid/security/keystore/KeyGenParameterSpec$Builder;";
            let gcm = env.new_string("GCM")?;
            let modes = env.new_object_array(1, "java/lang/String", &gcm)?;
            let builder = env
                .call_method(
                    &builder,
                    "setBlockModes",
                    format!("([Ljava/lang/String;){builder_sig}"),
                    &[JValue::Object(&modes)],
                )?
                .l()?;
            let none = env.new_string("NoPadding")?;
            let paddings = env.new_object_array(1, "java/lang/String", &none)?;
            let builder = env
                .call_method(
                    &builder,
                    "setEncryptionPaddings",
                    format!("([Ljava/lang/String;){builder_sig}"),
                    &[JValue::Object(&paddings)],
                )?
                .l()?;
            let builder = env
                .call_method(
                    &builder,
                    "setKeySize",
                    format!("(I){builder_sig}"),
                    &[JValue::Int(256)],
                )?
                .l()?;
            let spec = env
                .call_method(
                    &builder,
                    "build",
                    "()Landroid/security/keystore/KeyGenParameterSpec;",
                    &[],
                )?
                .l()?;
            env.call_method(
                &gen,
                "init",
                "(Ljava/security/spec/AlgorithmParameterSpec;)V",
                &[JValue::Object(&spec)],
            )?;
            env.call_method(&gen, "generateKey", "()Ljavax/crypto/SecretKey;", &[])?;
        }
        env.call_method(
            &ks,
            "getKey",
            "(Ljava/lang/String;[C)Ljava/security/Key;",
            &[JValue::Object(&alias), JValue::Object(&JObject::null())],
        )?
        .l()
    }

    fn cipher<'a>(env: &mut JNIEnv<'a>) -> manganis::jni::errors::Result<JObject<'a>> {
        let transformation = env.new_string("AES/GCM/NoPadding")?;
        env.call_static_method(
            "javax/crypto/Cipher",
            "getInstance",
            "(Ljava/lang/String;)Ljavax/crypto/Cipher;",
            &[JValue::Object(&transformation)],
        )?
        .l()
    }

    /// `iv || ciphertext+tag` of the device key.
    fn wrap(plain: &Key) -> Result<Vec<u8>, KeyStoreError> {
        with_env(|env| {
            let key = wrapping_key(env)?;
            let c = cipher(env)?;
            // Cipher.ENCRYPT_MODE; the provider chooses the IV (caller IVs are refused by default).
            env.call_method(
                &c,
                "init",
                "(ILjava/security/Key;)V",
                &[JValue::Int(1), JValue::Object(&key)],
            )?;
            let input = env.byte_array_from_slice(plain)?;
            let sealed: JByteArray = env
                .call_method(&c, "doFinal", "([B)[B", &[JValue::Object(&input)])?
                .l()?
                .into();
            let iv: JByteArray = env.call_method(&c, "getIV", "()[B", &[])?.l()?.into();
            let mut out = env.convert_byte_array(&iv)?;
            out.extend(env.convert_byte_array(&sealed)?);
            Ok(out)
        })
    }

    fn unwrap(blob: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        if blob.len() <= IV_LEN {
            return Err(KeyStoreError::Platform(
                "wrapped device key is truncated".into(),
            ));
        }
        let (iv, sealed) = blob.split_at(IV_LEN);
        with_env(|env| {
            let key = wrapping_key(env)?;
            let c = cipher(env)?;
            let iv = env.byte_array_from_slice(iv)?;
            let spec = env.new_object(
                "javax/crypto/spec/GCMParameterSpec",
                "(I[B)V",
                &[JValue::Int(128), JValue::Object(&iv)],
            )?;
            // Cipher.DECRYPT_MODE
            env.call_method(
                &c,
                "init",
                "(ILjava/security/Key;Ljava/security/spec/AlgorithmParameterSpec;)V",
                &[JValue::Int(2), JValue::Object(&key), JValue::Object(&spec)],
            )?;
            let input = env.byte_array_from_slice(sealed)?;
            let plain: JByteArray = env
                .call_method(&c, "doFinal", "([B)[B", &[JValue::Object(&input)])?
                .l()?
                .into();
            env.convert_byte_array(&plain)
        })
    }

    impl KeyStore for AndroidKeyStore {
        fn device_key(&self) -> Result<Key, KeyStoreError> {
            let io = |source| KeyStoreError::Io {
                path: self.wrapped.clone(),
                source,
            };
            match std::fs::read(&self.wrapped) {
                Ok(blob) => unwrap(&blob)?
                    .try_into()
                    .map_err(|_| KeyStoreError::Corrupt(self.wrapped.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    use rand::RngCore;
                    let mut key = [0u8; 32];
                    rand::rngs::OsRng.fill_bytes(&mut key);
                    let blob = wrap(&key)?;
                    // Written like every other outbox file: temp, fsync, rename, fsync the directory.
                    bianmin_engine::outbox::disk::write_atomic_with(&self.wrapped, |f| {
                        std::io::Write::write_all(f, &blob)
                    })
                    .map_err(io)?;
                    Ok(key)
                }
                Err(e) => Err(io(e)),
            }
        }
    }
}
