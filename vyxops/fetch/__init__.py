"""Reading the platforms: HTTP with its retry loop, the clients, sessions and targets, and the frames."""
