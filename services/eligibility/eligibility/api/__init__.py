"""HTTP routes of eligibility, one module per use case."""

from eligibility.api import enrolments, evaluations, households, programmes

routers = [households.router, enrolments.router, programmes.router, evaluations.router]
