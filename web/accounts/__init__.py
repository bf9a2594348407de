"""Host accounts: sign-in and the identities linked to them."""
