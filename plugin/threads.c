/* The plugin's own threads (table in docs/architecture.md): each is started
 * with every signal blocked, so that it never runs the broker's signal
 * handlers nor takes the event watcher's wake-up signal meant for the main
 * thread. */
#include <signal.h>

#include "onboard.h"

int thread_start(pthread_t *thread, void *(*fn)(void *), const char *what)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(thread, NULL, fn, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(r != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot start the %s", what);
		return ONB_EINTERNAL;
	}
	return ONB_OK;
}

void thread_stop(pthread_t thread, atomic_bool *stopping, pthread_mutex_t *lock, pthread_cond_t *cond)
{
	atomic_store(stopping, true);
	pthread_mutex_lock(lock);
	pthread_cond_signal(cond);
	pthread_mutex_unlock(lock);
	pthread_join(thread, NULL);
}
