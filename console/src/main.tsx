import { render } from 'preact';
import { App } from './app.tsx';
import { currentLocale, loadLocale } from './i18n.ts';
import './console.css';

// The words first (in the language the server chose for this page), then the app.
loadLocale(currentLocale())
  .catch(() => loadLocale('en'))
  .finally(() => render(<App />, document.getElementById('app')!));
