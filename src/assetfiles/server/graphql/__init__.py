"""The ExoSense-compatible GraphQL face."""
