"""Storage behind a small port; ORM rows never leave this package."""
