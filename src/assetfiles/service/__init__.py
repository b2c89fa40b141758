"""Use cases shared by every face: the rules live here, never in a face or in the store."""
