# tests/unit/unit.mk — C unit tests of rsp/ and debug/ (owned by their modules).
.PHONY: unit
unit:
