// React Testing Library: wait up to 5 s (the default 1 s is tight for a real
// server on a loaded CI machine).
import { configure } from '@testing-library/react';

configure({ asyncUtilTimeout: 5_000 });
