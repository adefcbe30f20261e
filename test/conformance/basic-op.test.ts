// OpenID conformance suite: the Basic OP plan (oidcc-basic-certification-test-plan), default response mode.
import { basicPlan } from './basic-plan.ts';

basicPlan('query');
