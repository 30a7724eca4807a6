"""Single sign-on with an OpenID Connect identity provider (django-allauth's `openid_connect`).

Guarantees (tests/portal/test_sso.py runs each against a real provider on the loopback):

* An IdP identity signs in to a Backstop account only when it is already linked to it (by the IdP's
  `sub`), or when the IdP says the e-mail address is verified and it is that account's address. An
  unverified address never links, never creates: the classic takeover, where someone registers a
  colleague's address at a lax IdP, is refused.
* Deactivated accounts stay out, whichever way they sign in; SSO never reactivates or creates staff.
* With SSO required, passwords are refused (sign-in, re-authentication, reset mail) for everyone
  but the break-glass staff accounts; API tokens are unaffected.
* Staff MFA holds: a staff sign-in through the IdP still needs this session's second factor, which
  the IdP's `amr` claim provides only for the values the operator lists.
"""
