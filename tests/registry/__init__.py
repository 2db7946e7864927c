"""Where destinations come from: the settings and the admin's managed rows."""
