"""Side effects: database, carriers, payments, notifications."""
