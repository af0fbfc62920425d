"""Administration: user accounts (staff creation, disabling) and the enterprise approval queue."""
