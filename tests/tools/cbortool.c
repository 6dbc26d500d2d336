/* cbortool: CBOR <-> JSON for the CBOR provisioning tests, through lib/'s
 * own codec (lib/provisioning/provcbor.c), so that a script can write a CBOR request and
 * read a CBOR answer with jq.
 *
 * usage: cbortool tojson < DOC.cbor > DOC.json    (any CBOR document our rules accept)
 *        cbortool fromjson < DOC.json > DOC.cbor  (objects become definite maps)
 * Exit 0, 1 when the input is not a document, 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "provisioning/provcbor.h"

#define INPUT_MAX (1024 * 1024)

int main(int argc, char **argv)
{
	static unsigned char in[INPUT_MAX + 1];
	struct onb_prov_doc doc;
	struct onb_err err;
	size_t n;
	cJSON *j;
	char *text;
	int rc = 1;

	if(argc != 2 || (strcmp(argv[1], "tojson") != 0 && strcmp(argv[1], "fromjson") != 0)){
		fprintf(stderr, "usage: cbortool tojson|fromjson < IN > OUT\n");
		return 2;
	}
	n = fread(in, 1, sizeof(in), stdin);
	if(n > INPUT_MAX){
		fprintf(stderr, "cbortool: input over %d bytes\n", INPUT_MAX);
		return 1;
	}
	if(!strcmp(argv[1], "tojson")){
		j = onb_provcbor_to_json(in, n, ONB_PROVCBOR_TOOL_DEPTH_MAX, &err);
		if(!j){
			fprintf(stderr, "cbortool: %s\n", err.msg);
			return 1;
		}
		if((text = cJSON_PrintUnformatted(j))){
			printf("%s\n", text);
			cJSON_free(text);
			rc = 0;
		}
		cJSON_Delete(j);
		return rc;
	}
	in[n] = '\0';
	/* (cJSON would read a NUL inside a string as its end) */
	if(memchr(in, '\0', n) || !(j = cJSON_ParseWithLength((const char *)in, n))){
		fprintf(stderr, "cbortool: not JSON\n");
		return 1;
	}
	if(onb_provcbor_from_json(j, &doc, &err) == ONB_OK){
		rc = fwrite(doc.data, 1, doc.len, stdout) == doc.len ? 0 : 1;
		onb_prov_doc_clear(&doc);
	}else{
		fprintf(stderr, "cbortool: %s\n", err.msg);
	}
	cJSON_Delete(j);
	return rc;
}
