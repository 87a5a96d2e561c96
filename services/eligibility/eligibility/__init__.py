"""Who each programme covers, with reasons; enrolment."""
