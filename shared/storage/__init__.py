"""Azure Table Storage: the app's tables, their keys and entity documents."""
