/* Prints a TCP port on 127.0.0.1 that was free a moment ago: bind port 0,
 * read it back, close. The caller retries if another process takes it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
			|| getsockname(fd, (struct sockaddr *)&sa, &len) != 0){
		perror("freeport");
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(sa.sin_port));
	close(fd);
	return 0;
}
