# guests/guests.mk — freestanding test guests (owned by the guests work).
.PHONY: guests
guests:
