#ifndef PIONRL_TIMER_H
#define PIONRL_TIMER_H
// Monotonic wall-clock seconds.
double time_now(void);
#endif
