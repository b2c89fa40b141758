"""assetfiles: store, serve and mirror the files of IoT assets and devices."""
