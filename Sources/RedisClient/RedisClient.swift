// The Redis client lands with issue 4.
