"""Client side of assetfiles: talks to a server only over HTTP, as any user's program would."""
