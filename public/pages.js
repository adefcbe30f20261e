// Progressive enhancement for the sign-in pages; every page works without it.
// A "Show password" button next to each password field (hidden until this script runs).
for (const button of document.querySelectorAll('button[data-reveal]')) {
  const input = document.getElementById(button.dataset.reveal);
  if (!input) continue;
  button.hidden = false;
  button.addEventListener('click', () => {
    const show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    button.setAttribute('aria-pressed', String(show));
    button.textContent = show ? button.dataset.hide : button.dataset.show;
    input.focus();
  });
}

// Passkeys (WebAuthn), through @simplewebauthn/browser (/assets/webauthn.js, on the pages that
// offer one). A form with data-passkey holds the options the server made for it (their challenge
// is kept on the server and works once); submitting it asks the browser, and posts the answer in
// the form's "response" field. Hidden until this script shows it, with a notice in its place for
// browsers that cannot. data-autofill: also offer the person's passkeys in the email field's
// autofill (conditional mediation), answered through the same form.
const webauthn = window.SimpleWebAuthnBrowser;
for (const form of document.querySelectorAll('form[data-passkey]')) {
  if (!webauthn || !webauthn.browserSupportsWebAuthn()) continue;
  const optionsJSON = JSON.parse(form.dataset.passkey);
  const register = form.dataset.ceremony === 'register';
  const failure = form.querySelector('[data-passkey-error]');
  const send = (answer) => {
    form.elements.response.value = JSON.stringify(answer);
    form.submit();
  };
  form.hidden = false;
  for (const notice of document.querySelectorAll('[data-passkey-unsupported]')) notice.hidden = true;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (failure) failure.hidden = true;
    const ceremony = register ? webauthn.startRegistration({ optionsJSON }) : webauthn.startAuthentication({ optionsJSON });
    ceremony.then(send, () => {
      // Cancelled, timed out, or no passkey for this site on this device.
      if (failure) failure.hidden = false;
    });
  });
  if (form.dataset.autofill !== undefined) {
    webauthn.browserSupportsWebAuthnAutofill().then((supported) => {
      // A passkey picked from the autofill; when the button starts its own request, this one is aborted.
      if (supported) webauthn.startAuthentication({ optionsJSON, useBrowserAutofill: true }).then(send, () => {});
    });
  }
}
