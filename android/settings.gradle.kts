// Standalone settings so the plugin also builds on its own (`gradle assembleRelease`) for checking.
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
    plugins {
        id("com.android.library") version "8.5.2"
        id("org.jetbrains.kotlin.android") version "1.9.24"
    }
}
dependencyResolutionManagement { repositories { google(); mavenCentral() } }
rootProject.name = "bianmin-camera"
