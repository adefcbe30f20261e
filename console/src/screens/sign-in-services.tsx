import type { ScreenProps } from '../app.tsx';
import { t } from '../i18n.ts';
import { Screen } from '../ui.tsx';

export function SignInServices(_props: ScreenProps) {
  return <Screen title={t('nav.sign-in-services')}>{null}</Screen>;
}
