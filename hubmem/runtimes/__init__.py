"""What a named runtime allocates from the memory terms (DESIGN.md: runtimes/)."""
