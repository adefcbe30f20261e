// OpenID conformance suite: the Form Post OP plan (oidcc-formpost-basic-certification-test-plan):
// the Basic OP modules with response_mode=form_post.
import { basicPlan } from './basic-plan.ts';

basicPlan('form_post');
